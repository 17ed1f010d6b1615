import Foundation
import FullStoryContract
import SegSyncVocabulary

/// Applies a ``Plan``: a reconciler over a work queue where each partition is a small
/// state machine — create → poll → resolve link → download → verify → commit.
///
/// Partitions run with bounded concurrency; the API client's rate limiter paces them
/// all. One partition's permanent failure never stops the others.
public struct Executor: Sendable {
    /// How much at once, how long to wait, and how often to try.
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
        /// A test hook: how long a create's id waits between its answer and its commit.
        public var holdBeforeIdCommit: Duration?

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
    public let client: any ExportService
    /// Where downloads go: the folder, or a bucket.
    public let output: any OutputStore
    public let options: Options
    /// What happens to each partition, as it happens (``ApplyEvent``).
    public let events: @Sendable (ApplyEvent) -> Void
    /// Called as each partition's work ends, for progress displays.
    public let finished: @Sendable (ApplyReport.Outcome) -> Void
    public let clock: @Sendable () -> Date

    public init(manifest: Manifest, layout: Layout, client: any ExportService, output: (any OutputStore)? = nil, options: Options = .init(),
                events: @escaping @Sendable (ApplyEvent) -> Void = { _ in },
                finished: @escaping @Sendable (ApplyReport.Outcome) -> Void = { _ in },
                clock: @escaping @Sendable () -> Date = { Date() }) {
        self.manifest = manifest
        self.layout = layout
        self.client = client
        self.output = output ?? FolderOutput(layout: layout)
        self.options = options
        self.events = events
        self.finished = finished
        self.clock = clock
    }

    /// Runs every action of `plan` and returns what happened. Run ``Workspace/tidy(_:_:now:)``
    /// first: it does the housekeeping that needs no API.
    public func apply(_ plan: Plan, snapshot: Workspace.Snapshot, store: any StateStore) async throws -> ApplyReport {
        let writer = StateWriter(state: snapshot.state, lockfile: snapshot.lockfile, store: store, layout: layout, output: output)
        // Files to be repaired or replaced stay in the lockfile until their download
        // starts (``PartitionRun/download(_:)`` withdraws each): a replace whose export
        // fails leaves the old file recorded, as it still is on disk.
        let deadline = options.maxWait.map { ContinuousClock.now + $0 }
        let work = plan.work
        var report = ApplyReport()
        report.listsOperations = manifest.api.dialect == .fullstory
        let downloads = Semaphore(options.parallelism)
        let refused = RefusedExports()
        let diskFull = DiskFull()
        let stop = FirstReason()
        let createGate = Semaphore(1)
        // Creates whose answers were lost: their exports are looked for first, in one
        // listing for all of them (each intent's match depends on the others' windows).
        // Open intents the plan does not adopt now (a partition left out by --target, or
        // one the window has left) only keep their windows' exports from being adopted.
        var adoption = Adoption.Result()
        let adopting = Set(work.filter { $0.kind == .adopt }.map(\.key))
        if !adopting.isEmpty {
            let intents = Adoption.intents(in: snapshot.state, measuredOffset: client.serverClockOffset)
            adoption = await Adoption.resolve(intents.filter { adopting.contains($0.key) },
                                              others: intents.filter { !adopting.contains($0.key) }, client: client, store: store)
        }
        report.unclaimedExports = adoption.unclaimed
        let outcomes = adoption.outcomes

        await withTaskGroup(of: (Plan.Action, ApplyReport.Outcome, creates: Int, unknown: Int, finalized: Int, changed: Int, adopted: Int, adoptedAtOnce: Int).self) { group in
            var pending = work[...]
            func startNext() {
                // Once interrupted or stopped, nothing new starts; what runs winds down.
                guard !Task.isCancelled, stop.reason == nil, let action = pending.popFirst() else { return }
                group.addTask {
                    let run = PartitionRun(executor: self, writer: writer, action: action, deadline: deadline,
                                           downloads: downloads, createGate: createGate, adoption: outcomes[action.key],
                                           refused: refused, diskFull: diskFull, stopRun: stop, runInstant: plan.now)
                    let outcome = await run.execute()
                    return (action, outcome, run.creates.value, run.unknownCreates.value, run.finalized.value, run.finalizedChanged.value,
                            run.adopted.value, run.adoptedAtOnce.value)
                }
            }
            for _ in 0..<options.maxInFlight { startNext() }
            for await (action, outcome, creates, unknown, finalized, changed, adopted, adoptedAtOnce) in group {
                report.record(action, outcome)
                report.createCalls += creates + unknown
                report.unknownCreates += unknown
                report.finalized += finalized
                report.finalizedChanged += changed
                report.adopted += adopted
                report.adoptedAtOnce += adoptedAtOnce
                finished(outcome)
                // A rejected key stops the run: the others end at once, their ids kept
                // (a create already sent still finishes and is recorded).
                if stop.reason != nil { group.cancelAll() }
                startNext()
            }
        }
        report.stopped = stop.reason
        // What was never started is left for the next run too.
        if report.stopped != nil {
            let started = Set(report.results.map(\.action.key))
            for action in work where !started.contains(action.key) { report.record(action, .stillRunning) }
        }

        let prunes = plan.prunes
        if !prunes.isEmpty {
            if report.failures.isEmpty && report.stopped == nil {
                try await writer.withdraw(paths: prunes.compactMap(\.outputPath))
                for action in prunes { report.record(action, await prune(action, writer: writer)) }
            } else {
                report.pruneSkipped = prunes.count
                events(ApplyEvent(key: nil, label: "", kind: .prunesSkipped(count: prunes.count), time: clock()))
            }
        }
        do {
            try await writer.flush()
        } catch let problem as DerivedFilesError {
            report.derivedFilesProblem = problem.description
        }
        return report
    }

    func prune(_ action: Plan.Action, writer: StateWriter) async -> ApplyReport.Outcome {
        do {
            guard let relative = action.outputPath else { return .failed("nothing recorded to prune") }
            try await output.delete(relative)
            try await writer.forget(action.key)
            events(ApplyEvent(key: action.key, label: action.label, kind: .pruned(path: relative), time: clock()))
            return .done("pruned")
        } catch {
            return .failed("\(error)")
        }
    }
}

/// Exports whose creates the API refused for a reason that holds for all their
/// partitions (an unknown segment, a request the dialect does not take): their other
/// partitions are not sent, and fail with the same sentence, said once. (A rejected key
/// holds for every export: it stops the run, ``Verdict/stopRun``.)
final class RefusedExports: Sendable {
    private let reasons = Locked<[String: String]>([:])

    func reason(for export: String) -> String? { reasons.value[export] }

    /// Records `failure` for `export` if it is one that every partition would meet;
    /// returns the sentence (with a hint) to report.
    func record(_ failure: FullStoryAPIError, export: String, dialect: Dialect) -> String? {
        let hint: String
        switch failure {
        case .segmentNotFound:
            hint = "Check the export's segment id with `segsync segments list`."
        case .badRequest, .invalidRequest:
            hint = "Check that api.dialect (\(dialect.rawValue)) is the one the endpoint speaks, and the segment id with `segsync segments list`."
        default:
            return nil
        }
        let sentence = "\(failure.description) \(hint)"
        return reasons.withLock { reasons in
            if let first = reasons[export] { return first }
            reasons[export] = sentence
            return sentence
        }
    }
}

/// Set once a download finds the disk full: the run's other downloads are not tried.
final class DiskFull: Sendable {
    private let full = FirstReason()

    var folder: String? { full.reason }
    func record(_ folder: String) { full.set(folder) }
}
