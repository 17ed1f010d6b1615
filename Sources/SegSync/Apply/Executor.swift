import Foundation
import FullStoryAPI

/// Applies a ``Plan``: a reconciler over a work queue where each partition is a small
/// state machine — create → poll → resolve link → download → verify → commit.
///
/// Partitions run with bounded concurrency; the API client's rate limiter paces them
/// all. One partition's permanent failure never stops the others.
public struct Executor: Sendable {
    public struct Options: Sendable {
        /// Downloads at once (the heavy part: bandwidth and disk).
        public var parallelism = 4
        /// Partitions in flight at once: exports created and being waited for. Exports run
        /// on FullStory's side, so waiting for many at once costs little here.
        public var maxInFlight = 32
        /// How long to wait for running operations; what still runs is left for the next run.
        public var maxWait: Duration?
        /// New exports created for one partition in one run before giving up.
        public var maxAttempts = 3
        public var pollInterval: Duration = .seconds(2)
        public var maxPollInterval: Duration = .seconds(30)
        /// Times an expired download link is fetched again before giving up.
        public var maxLinkRefreshes = 3

        public init(parallelism: Int = 4, maxInFlight: Int = 32, maxWait: Duration? = nil, maxAttempts: Int = 3,
                    pollInterval: Duration = .seconds(2), maxPollInterval: Duration = .seconds(30)) {
            self.parallelism = max(1, parallelism)
            self.maxInFlight = max(1, maxInFlight)
            self.maxWait = maxWait
            self.maxAttempts = max(1, maxAttempts)
            self.pollInterval = pollInterval
            self.maxPollInterval = maxPollInterval
        }
    }

    public let manifest: Manifest
    public let layout: Layout
    public let client: FullStoryClient
    public let options: Options
    /// What happens to each partition, as it happens (``ApplyEvent``).
    public let events: @Sendable (ApplyEvent) -> Void
    /// Called as each partition's work ends, for progress displays.
    public let finished: @Sendable (ApplyReport.Outcome) -> Void
    public let clock: @Sendable () -> Date

    public init(manifest: Manifest, layout: Layout, client: FullStoryClient, options: Options = .init(),
                events: @escaping @Sendable (ApplyEvent) -> Void = { _ in },
                finished: @escaping @Sendable (ApplyReport.Outcome) -> Void = { _ in },
                clock: @escaping @Sendable () -> Date = { Date() }) {
        self.manifest = manifest
        self.layout = layout
        self.client = client
        self.options = options
        self.events = events
        self.finished = finished
        self.clock = clock
    }

    /// Runs every action of `plan` and returns what happened. Run ``Workspace/tidy(_:_:now:)``
    /// first: it does the housekeeping that needs no API.
    public func apply(_ plan: Plan, snapshot: Workspace.Snapshot, store: any StateStore) async throws -> ApplyReport {
        let writer = StateWriter(state: snapshot.state, lockfile: snapshot.lockfile, store: store, layout: layout)
        // Files to be repaired or replaced stay in the lockfile until their download
        // starts (``PartitionRun/download(_:)`` withdraws each): a replace whose export
        // fails leaves the old file recorded, as it still is on disk.
        let deadline = options.maxWait.map { ContinuousClock.now + $0 }
        let work = plan.actions.filter { $0.kind != .prune }
        var report = ApplyReport()
        let downloads = Semaphore(options.parallelism)
        let refused = RefusedExports()
        let diskFull = DiskFull()

        await withTaskGroup(of: (Plan.Action, ApplyReport.Outcome, Int).self) { group in
            var pending = work[...]
            func startNext() {
                // Once interrupted, nothing new starts; what runs winds down.
                guard !Task.isCancelled, let action = pending.popFirst() else { return }
                group.addTask {
                    let run = PartitionRun(executor: self, writer: writer, action: action, deadline: deadline,
                                           downloads: downloads, refused: refused, diskFull: diskFull)
                    let outcome = await run.execute()
                    return (action, outcome, await run.creates.value)
                }
            }
            for _ in 0..<options.maxInFlight { startNext() }
            for await (action, outcome, creates) in group {
                report.record(action, outcome)
                report.createCalls += creates
                finished(outcome)
                startNext()
            }
        }

        let prunes = plan.actions.filter { $0.kind == .prune }
        if !prunes.isEmpty {
            if report.failures.isEmpty {
                try await writer.withdraw(paths: prunes.compactMap(\.outputPath))
                for action in prunes { report.record(action, await prune(action, writer: writer)) }
            } else {
                report.pruneSkipped = prunes.count
                events(ApplyEvent(key: nil, label: "", kind: .prunesSkipped(count: prunes.count), time: clock()))
            }
        }
        try await writer.flush()
        return report
    }

    func prune(_ action: Plan.Action, writer: StateWriter) async -> ApplyReport.Outcome {
        do {
            guard let relative = action.outputPath else { return .failed("nothing recorded to prune") }
            let path = try layout.absolutePath(ofOutput: relative)
            var info = stat()
            if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                guard unlink(path) == 0 else { return .failed("cannot delete \(path): \(errnoText()).") }
            }
            // The export's folder goes too once it is empty (rmdir refuses otherwise).
            rmdir((path as NSString).deletingLastPathComponent)
            try await writer.forget(action.key)
            events(ApplyEvent(key: action.key, label: action.label, kind: .pruned(path: relative), time: clock()))
            return .done("pruned")
        } catch {
            return .failed("\(error)")
        }
    }
}

/// Exports whose creates the API refused for a reason that holds for all their
/// partitions (an unknown segment, a request the dialect does not take, a rejected key):
/// their other partitions are not sent, and fail with the same sentence, said once.
final class RefusedExports: @unchecked Sendable {
    private let lock = NSLock()
    private var reasons: [String: String] = [:]

    func reason(for export: String) -> String? { lock.withLock { reasons[export] } }

    /// Records `failure` for `export` if it is one that every partition would meet;
    /// returns the sentence (with a hint) to report.
    func record(_ failure: FullStoryAPIError, export: String, dialect: APIDialect) -> String? {
        let hint: String
        switch failure {
        case .segmentNotFound:
            hint = "Check the export's segment id with `segsync segments list`."
        case .badRequest, .invalidRequest:
            hint = "Check that api.dialect (\(dialect.rawValue)) is the one the endpoint speaks, and the segment id with `segsync segments list`."
        case .unauthorized, .missingAPIKey:
            hint = ""
        default:
            return nil
        }
        let sentence = hint.isEmpty ? failure.description : "\(failure.description) \(hint)"
        return lock.withLock {
            if let first = reasons[export] { return first }
            reasons[export] = sentence
            return sentence
        }
    }
}

/// Set once a download finds the disk full: the run's other downloads are not tried.
final class DiskFull: @unchecked Sendable {
    private let lock = NSLock()
    private var full: String?

    var folder: String? { lock.withLock { full } }
    func record(_ folder: String) { lock.withLock { full = full ?? folder } }
}

/// A count that several threads may bump: a partition's creates, a run's interrupts.
public final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    public init() {}
    /// Counts one more and returns the new count.
    @discardableResult public func increment() -> Int { lock.withLock { count += 1; return count } }
    public var value: Int { lock.withLock { count } }
}

/// One partition's trip through the state machine.
struct PartitionRun: Sendable {
    let executor: Executor
    let writer: StateWriter
    let action: Plan.Action
    let deadline: ContinuousClock.Instant?
    let downloads: Semaphore
    let refused: RefusedExports
    let diskFull: DiskFull
    /// Creates sent in this run, and those the API accepted (with an id).
    let attempts = Counter()
    let creates = Counter()
    /// Looked up once: the manifest's export list is searched by name.
    let export: ExportSpec

    init(executor: Executor, writer: StateWriter, action: Plan.Action, deadline: ContinuousClock.Instant?,
         downloads: Semaphore, refused: RefusedExports, diskFull: DiskFull) {
        self.executor = executor
        self.writer = writer
        self.action = action
        self.deadline = deadline
        self.downloads = downloads
        self.refused = refused
        self.diskFull = diskFull
        export = executor.manifest.export(named: action.key.export)!
    }

    var partition: Partition { action.partition! }

    func emit(_ kind: ApplyEvent.Kind) {
        executor.events(ApplyEvent(key: action.key, label: action.label, kind: kind, time: executor.clock()))
    }

    enum Step {
        case downloaded
        case stillRunning
        case operationFailed(String)
        case operationGone
    }

    func execute() async -> ApplyReport.Outcome {
        var operationId: String? = action.kind == .create || action.kind == .replace ? nil : action.operationId
        var lastFailure: String?
        do {
            while true {
                if operationId == nil {
                    if let reason = refused.reason(for: export.name) {
                        // Said once, for the export, in the summary; not once per partition.
                        return .failed(reason)
                    }
                    if attempts.value >= executor.options.maxAttempts {
                        let message = "gave up after \(attempts.value) export\(attempts.value == 1 ? "" : "s") in this run: \(lastFailure ?? "unknown error")"
                        try await writer.update(action.key, .committed) { $0?.phase = .failed; $0?.lastError = message }
                        return .failed(message)
                    }
                    operationId = try await create()
                }
                switch try await follow(operationId!) {
                case .downloaded:
                    return .done("downloaded")
                case .stillRunning:
                    emit(.waiting(operationId: operationId!))
                    return .stillRunning
                case .operationFailed(let message):
                    lastFailure = "the export failed: \(message)"
                    emit(.operationFailed(operationId: operationId!, message: message))
                    let now = executor.clock()
                    try await writer.update(action.key, .committed) { $0?.phase = .failed; $0?.lastError = message; $0?.updatedAt = now }
                    operationId = nil
                case .operationGone:
                    lastFailure = "the API no longer knows operation \(operationId!)"
                    emit(.lost(operationId: operationId!))
                    operationId = nil
                }
            }
        } catch where Task.isCancelled {
            // Interrupted (Ctrl-C): whatever was recorded is resumed by the next run.
            return .stillRunning
        } catch let failure as FullStoryAPIError {
            if operationId == nil, let sentence = refused.record(failure, export: export.name, dialect: executor.manifest.api.dialect) {
                return await fail(sentence, keepOperation: false)
            }
            // A transient failure leaves a valid operation for the next run to resume.
            return await fail(failure.description, keepOperation: operationId != nil && failure.isTransient)
        } catch {
            return await fail("\(error)", keepOperation: operationId != nil)
        }
    }

    /// Records a failure. While an operation is still valid the record keeps it, so the
    /// next run resumes instead of exporting again.
    func fail(_ message: String, keepOperation: Bool) async -> ApplyReport.Outcome {
        let now = executor.clock()
        do {
            try await writer.update(action.key, .committed) { record in
                record?.lastError = message
                record?.updatedAt = now
                if !keepOperation { record?.phase = .failed }
            }
        } catch {
            // A full disk must not hide the failure: both reach the user.
            let both = "\(message) Recording this failure in state failed too: \(error)"
            emit(.failed(message: both))
            return .failed(both)
        }
        emit(.failed(message: message))
        return .failed(message)
    }

    /// Creates an export and puts its operation id on disk before anything else.
    func create() async throws -> String {
        let request = ExportRequest(partition: partition, export: export)
        let id: String
        do {
            attempts.increment()
            id = try await executor.client.createExport(request).id
            creates.increment()
        } catch let failure as FullStoryAPIError {
            let now = executor.clock()
            let parameters = ExportParameters(export, in: executor.manifest)
            let partition = self.partition
            try await writer.update(action.key, .committed) { record in
                var updated = record ?? PartitionRecord(partition: partition, parameters: parameters, phase: .failed, now: now)
                updated.phase = .failed
                // Only an export that may exist counts against the attempt limit: a
                // refused connection or a rejected key made none.
                if case .createOutcomeUnknown = failure { updated.attempts += 1 }
                updated.lastError = failure.description
                updated.updatedAt = now
                record = updated
            }
            throw failure
        }
        let now = executor.clock()
        let parameters = ExportParameters(export, in: executor.manifest)
        let partition = self.partition
        try await writer.update(action.key, .committed) { record in
            var updated = PartitionRecord(partition: partition, parameters: parameters, phase: .requested, now: now)
            updated.createdAt = record?.createdAt ?? now
            updated.attempts = (record?.attempts ?? 0) + 1
            updated.operationId = id
            updated.output = record?.output  // the old file stays recorded until its successor lands
            record = updated
        }
        emit(.created(operationId: id, type: export.type, format: export.format))
        return id
    }

    /// Polls until the operation finishes, then downloads its result.
    func follow(_ id: String) async throws -> Step {
        var delay = executor.options.pollInterval
        let started = ContinuousClock.now
        while true {
            let status: ExportOperation
            do {
                status = try await executor.client.getOperation(id)
            } catch FullStoryAPIError.operationNotFound {
                return .operationGone
            }
            let now = executor.clock()
            let phase: Phase = status.state == .completed ? .completed : .running
            try await writer.update(action.key, phase == .completed ? .committed : .memory) { record in
                record?.operationId = id
                record?.phase = phase
                record?.operationState = status.state.rawValue
                record?.progress = status.estimatePctComplete
                record?.updatedAt = now
            }
            emit(.polled(operationId: id, state: status.state.rawValue, percent: status.estimatePctComplete))
            switch status.state {
            case .completed:
                try await downloads.wait()
                do {
                    try await download(status)
                    await downloads.signal()
                } catch FullStoryAPIError.searchExportNotFound {
                    await downloads.signal()
                    return .operationGone
                } catch {
                    await downloads.signal()
                    throw error
                }
                return .downloaded
            case .failed:
                return .operationFailed(status.errorDetails ?? "no details given")
            case .pending, .running, .unknown:
                var wait = delay
                // With a progress estimate, sleep about half the remaining time.
                if let progress = status.estimatePctComplete, progress > 1, progress < 100 {
                    let elapsed = ContinuousClock.now - started
                    let remaining = elapsed * ((100 - progress) / progress)
                    wait = max(executor.options.pollInterval, min(executor.options.maxPollInterval, remaining / 2))
                }
                if let deadline {
                    let left = deadline - ContinuousClock.now
                    if left <= .zero { return .stillRunning }
                    wait = min(wait, left)
                }
                try await Task.sleep(for: wait)
                delay = min(delay * 1.5, executor.options.maxPollInterval)
            }
        }
    }

    /// Downloads a completed operation's file into place and records it.
    func download(_ completed: ExportOperation) async throws {
        // Once the disk is full, the other downloads are not started: they would fail the
        // same way. Their operations stay recorded, for the next run to download.
        if let folder = diskFull.folder { throw FullStoryAPIError.diskFull(folder: folder) }
        let relative = Layout.relativePath(for: partition, export: export)
        let path = try executor.layout.absolutePath(ofOutput: relative)
        let folder = (path as NSString).deletingLastPathComponent
        try AtomicFile.makeDirectory(folder)
        try await writer.withdraw(paths: [relative])
        var status = completed
        var file: DownloadResult?
        for refresh in 0...executor.options.maxLinkRefreshes {
            let link = try await executor.client.downloadLink(for: status)
            emit(.downloading(bytes: 0, total: nil))
            do {
                file = try await executor.client.download(link.url, to: path, decompress: export.decompress) { bytes, total in
                    emit(.downloading(bytes: bytes, total: total))
                }
                break
            } catch FullStoryAPIError.diskFull {
                diskFull.record(executor.layout.outputDirectory)
                throw FullStoryAPIError.diskFull(folder: executor.layout.outputDirectory)
            } catch FullStoryAPIError.expiredDownloadLink(let url) {
                guard refresh < executor.options.maxLinkRefreshes else { throw FullStoryAPIError.expiredDownloadLink(url: url) }
                emit(.relinking)
                status = try await executor.client.getOperation(completed.id)
            }
        }
        guard let file else { throw SegSyncError("no download happened.") }
        let entry = Lockfile.Entry(
            path: relative, sha256: file.sha256, bytes: file.bytes, export: export.name, segment: export.segment,
            type: export.type, format: export.format, start: partition.start, end: partition.end,
            fingerprint: partition.fingerprint, source: executor.manifest.api.endpoint)
        let output = OutputRecord(path: relative, bytes: file.bytes, sha256: file.sha256,
                                  modified: ObservedFiles.modificationTime(ofFileAt: path))
        // A replaced partition's old file (another format, say) goes once the new one is in place.
        for stale in try await writer.recordOutput(action.key, entry: entry, output: output, now: executor.clock()) {
            if let old = try? executor.layout.absolutePath(ofOutput: stale) { unlink(old) }
        }
        emit(.downloaded(path: relative, bytes: file.bytes, sha256: file.sha256))
    }
}

/// What an apply did.
public struct ApplyReport: Sendable {
    public enum Outcome: Sendable, Equatable {
        case done(String)
        case stillRunning
        case failed(String)
    }

    public struct Failure: Sendable, Equatable {
        public var export: String
        public var label: String
        public var message: String
    }

    /// Each partition worked on, in the order its work ended.
    public struct Result: Sendable, Equatable {
        public var action: Plan.Action
        public var outcome: Outcome
    }

    public var results: [Result] = []
    public var done = 0
    public var stillRunning: [Plan.Action] = []
    public var failures: [Failure] = []
    public var pruneSkipped = 0
    /// Export creations this run asked for.
    public var createCalls = 0

    public init() {}

    mutating func record(_ action: Plan.Action, _ outcome: Outcome) {
        results.append(Result(action: action, outcome: outcome))
        switch outcome {
        case .done: done += 1
        case .stillRunning: stillRunning.append(action)
        case .failed(let message): failures.append(Failure(export: action.key.export, label: action.label, message: message))
        }
    }

    public var converged: Bool { failures.isEmpty && stillRunning.isEmpty && pruneSkipped == 0 }
}
