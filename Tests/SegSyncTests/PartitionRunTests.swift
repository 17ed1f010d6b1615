import Crypto
import FullStoryContract
import Foundation
import SegSyncStorage
import SegSyncVocabulary
import Testing
import TestSupport
@testable import SegSync

/// An ``ExportService`` whose answers are scripted: each call takes the next answer
/// for its kind; `.hang` waits until the task is cancelled. No HTTP anywhere.
final class ScriptedExports: ExportService, @unchecked Sendable {
    enum Answer {
        case operation(ExportOperation)
        case file(String)
        case error(FullStoryAPIError)
        /// Any error at all: a state store's, the file system's, a cancellation's.
        case failure(any Error)
        case hang
    }

    private let lock = NSLock()
    private var answers: [String: [Answer]]
    private var log: [String] = []
    private var hanging = false
    /// Yields after every call, every hang and every event: tests wait on it, not on time.
    let (changes, changed) = AsyncStream<Void>.makeStream()

    init(create: [Answer] = [], poll: [Answer] = [], link: [Answer] = [], download: [Answer] = []) {
        answers = ["create": create, "poll": poll, "link": link, "download": download]
    }

    var calls: [String] { lock.withLock { log } }

    /// Runs as each create is sent, before it is answered (which then takes 5 ms more).
    var beforeCreate: (@Sendable (ExportRequest) async -> Void)?
    private var creating = 0
    private var mostCreating = 0
    /// The most creates that were being sent at once.
    var mostCreatesAtOnce: Int { lock.withLock { mostCreating } }
    var isHanging: Bool { lock.withLock { hanging } }

    private func next(_ kind: String, _ detail: String) async throws -> Answer {
        let answer: Answer? = lock.withLock {
            log.append("\(kind) \(detail)")
            return answers[kind]?.isEmpty == false ? answers[kind]!.removeFirst() : nil
        }
        changed.yield()
        switch answer {
        case .error(let error): throw error
        case .failure(let error): throw error
        case .hang:
            lock.withLock { hanging = true }
            changed.yield()
            // Waits for the task's cancellation: a stream nobody feeds ends only then.
            let (never, feed) = AsyncStream<Void>.makeStream()
            for await _ in never {}
            withExtendedLifetime(feed) {}
            throw CancellationError()
        case .operation, .file: return answer!
        case nil: throw SegSyncError("no scripted answer for \(kind) \(detail)")
        }
    }

    func createExport(_ request: ExportRequest) async throws -> ExportOperation {
        lock.withLock {
            creating += 1
            mostCreating = max(mostCreating, creating)
        }
        defer { lock.withLock { creating -= 1 } }
        if let beforeCreate {
            await beforeCreate(request)
            try await Task.sleep(for: .milliseconds(5))
        }
        guard case .operation(let operation) = try await next("create", request.segmentID) else { throw SegSyncError("create wants an operation") }
        return operation
    }

    func getOperation(_ id: String) async throws -> ExportOperation {
        guard case .operation(let operation) = try await next("poll", id) else { throw SegSyncError("poll wants an operation") }
        return operation
    }

    func downloadLink(for operation: ExportOperation) async throws -> DownloadLink {
        if lock.withLock({ answers["link"]?.isEmpty != false }) {
            lock.withLock { log.append("link \(operation.id)") }
            return DownloadLink(url: URL(string: "https://files.example/\(operation.id)")!)
        }
        _ = try await next("link", operation.id)
        return DownloadLink(url: URL(string: "https://files.example/\(operation.id)")!)
    }

    func download(_ url: URL, to finalPath: String, decompress: Bool, digestContent: Bool,
                  progress: @escaping @Sendable (Int64, Int64?) -> Void) async throws -> DownloadResult {
        guard case .file(let text) = try await next("download", url.lastPathComponent) else { throw SegSyncError("download wants a file") }
        try Data(text.utf8).write(to: URL(fileURLWithPath: finalPath))
        progress(Int64(text.utf8.count), Int64(text.utf8.count))
        return Self.result(text, digestContent: digestContent)
    }

    /// What a download of `text` (the content as written, no gzip) reports.
    static func result(_ text: String, digestContent: Bool) -> DownloadResult {
        let digest = SHA256.hash(data: Data(text.utf8)).hexString
        return DownloadResult(bytes: Int64(text.utf8.count), sha256: digest, contentSHA256: digestContent ? digest : nil,
                              contentLines: digestContent ? Int64(text.utf8.filter { $0 == UInt8(ascii: "\n") }.count) : nil)
    }

    func download(_ url: URL, into stream: any DownloadStream, decompress: Bool, digestContent: Bool,
                  progress: @escaping @Sendable (Int64, Int64?) -> Void) async throws -> DownloadResult {
        guard case .file(let text) = try await next("download", url.lastPathComponent) else { throw SegSyncError("download wants a file") }
        try await stream.write(Array(text.utf8))
        progress(Int64(text.utf8.count), Int64(text.utf8.count))
        return Self.result(text, digestContent: digestContent)
    }
}

/// `PartitionRun` in-process: every transition of its state machine, and cancellation in
/// every state that waits, against a scripted client and a real SQLite state.
@Suite(.timeLimit(.minutes(2))) struct PartitionRunTests {
    static let manifestText = """
        version: 1
        exports:
          - name: night-orders
            segment: night_owls
            type: events
            format: csv
            window: { every: 1d, last: 2d, settle: 1d }
        """
    static let now = Timestamp.parse("2026-11-28T00:00:00Z")!
    static func running(_ id: String, _ percent: Double? = nil) -> ScriptedExports.Answer { .operation(ExportOperation(id: id, state: .running, estimatePctComplete: percent)) }
    static func completed(_ id: String) -> ScriptedExports.Answer { .operation(ExportOperation(id: id, state: .completed)) }

    /// A workspace on disk, its SQLite state, and one partition's run wired to `client`.
    final class Harness: @unchecked Sendable {
        let folder: TemporaryFolder
        let manifest: Manifest
        let layout: Layout
        let store: any StateStore
        let writer: StateWriter
        let run: PartitionRun
        private let lock = NSLock()
        private var seen: [ApplyEvent.Kind] = []

        /// `folder`: an earlier harness's, to run again over its state (and `operationId` is
        /// then what that state must record). `wrap` puts a fault between the run and the store.
        init(_ client: ScriptedExports, kind: Plan.Kind = .create, operationId: String? = nil, maxAttempts: Int = 3,
             deadline: ContinuousClock.Instant? = nil, downloadSlots: Int = 1, refused: RefusedExports = RefusedExports(),
             folder existing: TemporaryFolder? = nil, wrap: (SQLiteStateStore) -> any StateStore = { $0 }) async throws {
            folder = try existing ?? TemporaryFolder()
            if existing == nil { try folder.write("segsync.yaml", PartitionRunTests.manifestText) }
            manifest = try ManifestLoader.load(path: folder.path + "/segsync.yaml")
            layout = Layout(manifestPath: folder.path + "/segsync.yaml", output: manifest.output)
            try AtomicFile.makeDirectory(layout.stateDirectory)
            store = wrap(try await SQLiteStateStore.open(path: layout.stateDirectory + "/state.sqlite", lockPath: layout.stateDirectory + "/lock"))
            let plan = try Planner.plan(manifest: manifest, state: State(), lockfile: Lockfile(), observed: ObservedFiles(), now: PartitionRunTests.now)
            var action = plan.actions[0]
            action.kind = kind
            action.operationId = operationId
            var state = existing == nil ? State() : try await store.load()
            if let operationId, existing == nil {
                var record = PartitionRecord(partition: action.partition!, parameters: ExportParameters(manifest.exports[0], in: manifest),
                                             phase: .requested, now: PartitionRunTests.now)
                record.operationId = operationId
                record.attempts = 1
                state[action.key] = record
                try await store.replace(with: state)
                state = try await store.load()
            }
            writer = StateWriter(state: state, lockfile: Lockfile(), store: store, layout: layout)
            var options = Executor.Options(maxAttempts: maxAttempts, pollInterval: .milliseconds(1), maxPollInterval: .milliseconds(4))
            options.maxLinkRefreshes = 1
            let events = Box(notify: client.changed)
            let executor = Executor(manifest: manifest, layout: layout, client: client, options: options,
                                    events: { event in events.append(event.kind) })
            run = PartitionRun(executor: executor, writer: writer, action: action, deadline: deadline,
                               downloads: Semaphore(downloadSlots), refused: refused, diskFull: DiskFull())
            self.events = events
        }

        let events: Box

        /// The partition's record as committed.
        func record() async throws -> PartitionRecord? {
            try await writer.flush()
            return try await store.load()[run.action.key]
        }

        /// Runs the partition to its end, then closes the store (for a next harness).
        func executeAndClose() async -> ApplyReport.Outcome {
            let outcome = await run.execute()
            try? await writer.flush()
            await store.close()
            return outcome
        }

        deinit { let store = store; Task { await store.close() } }
    }

    final class Box: @unchecked Sendable {
        private let lock = NSLock()
        private var kinds: [ApplyEvent.Kind] = []
        private let notify: AsyncStream<Void>.Continuation
        init(notify: AsyncStream<Void>.Continuation) { self.notify = notify }
        func append(_ kind: ApplyEvent.Kind) {
            lock.withLock { kinds.append(kind) }
            notify.yield()
        }
        var names: [String] { lock.withLock { kinds.map { ApplyEvent(key: nil, label: "", kind: $0, time: Date()).name } } }
    }

    // MARK: Transitions, one at a time

    @Test("needs an export → polling the created operation, its id committed first")
    func createTransition() async throws {
        let client = ScriptedExports(create: [Self.running("op-1")])
        let harness = try await Harness(client)
        let next = try await harness.run.next(.needsExport(lastFailure: nil))
        guard case .polling(let id, let delay, _) = next else { Issue.record("got \(next)"); return }
        #expect(id == "op-1" && delay == .milliseconds(1))
        let record = try await harness.record()
        #expect(record?.phase == .requested && record?.operationId == "op-1" && record?.attempts == 1)
        #expect(harness.events.names == ["created"])
    }

    @Test("needs an export, but the export was refused → failed with the export's sentence, nothing sent")
    func refusedTransition() async throws {
        let refused = RefusedExports()
        let sentence = refused.record(.segmentNotFound(segmentID: "night_owls"), export: "night-orders", dialect: .seed)
        let client = ScriptedExports()
        let harness = try await Harness(client, refused: refused)
        #expect(try await harness.run.next(.needsExport(lastFailure: nil)) == .finished(.failed(sentence!)))
        #expect(client.calls.isEmpty)
    }

    @Test("needs an export, with this run's attempts used → failed, recorded with the last failure")
    func attemptsTransition() async throws {
        let client = ScriptedExports(create: [Self.running("op-1")])
        let harness = try await Harness(client, maxAttempts: 1)
        _ = try await harness.run.next(.needsExport(lastFailure: nil))
        let next = try await harness.run.next(.needsExport(lastFailure: "the export failed: boom"))
        #expect(next == .finished(.failed("gave up after 1 export in this run: the export failed: boom")))
        let record = try await harness.record()
        #expect(record?.phase == .failed && record?.lastError == "gave up after 1 export in this run: the export failed: boom")
    }

    @Test("needs an export, and the create fails → the failure is thrown and recorded; an unknown outcome counts as an attempt and keeps its intent")
    func createFailsTransition() async throws {
        let client = ScriptedExports(create: [.error(.createOutcomeUnknown(cause: "the connection closed"))])
        let harness = try await Harness(client)
        await #expect(throws: FullStoryAPIError.self) { try await harness.run.next(.needsExport(lastFailure: nil)) }
        let record = try #require(try await harness.record())
        // The export may exist: the intent stays, for the next run to look for it (no answer came).
        #expect(record.phase == .creating && record.attempts == 1 && record.operationId == nil)
        #expect(record.intent != nil && record.intent?.answeredAt == nil)

        // A create the server surely did not make (refused) ends its intent and does not count.
        let refused = try await Harness(ScriptedExports(create: [.error(.badRequest(message: "no such segment"))]))
        await #expect(throws: FullStoryAPIError.self) { try await refused.run.next(.needsExport(lastFailure: nil)) }
        let failed = try #require(try await refused.record())
        #expect(failed.phase == .failed && failed.attempts == 0 && failed.intent == nil)
    }

    @Test("polling: RUNNING → polling again, backing off; COMPLETED → downloading; FAILED → needs an export")
    func pollTransitions() async throws {
        let client = ScriptedExports(poll: [Self.running("op-1"), Self.completed("op-1"),
                                            .operation(ExportOperation(id: "op-2", state: .failed, errorDetails: "boom"))])
        let harness = try await Harness(client, kind: .resume, operationId: "op-1")
        let since = ContinuousClock.now
        #expect(try await harness.run.next(.polling(operationId: "op-1", delay: .milliseconds(2), since: since))
            == .polling(operationId: "op-1", delay: .milliseconds(3), since: since))
        #expect(try await harness.run.next(.polling(operationId: "op-1", delay: .milliseconds(1), since: since))
            == .downloading(ExportOperation(id: "op-1", state: .completed)))
        #expect(try await harness.record()?.phase == .completed)  // committed: the next run downloads, not polls
        #expect(try await harness.run.next(.polling(operationId: "op-2", delay: .milliseconds(1), since: since))
            == .needsExport(lastFailure: "the export failed: boom"))
        let record = try await harness.record()
        #expect(record?.phase == .failed && record?.lastError == "boom")
        #expect(harness.events.names == ["polled", "polled", "polled", "op-failed"])
    }

    @Test("polling an operation the API has forgotten → needs an export")
    func lostTransition() async throws {
        let client = ScriptedExports(poll: [.error(.operationNotFound(operationID: "op-1"))])
        let harness = try await Harness(client, kind: .resume, operationId: "op-1")
        #expect(try await harness.run.next(.polling(operationId: "op-1", delay: .milliseconds(1), since: .now))
            == .needsExport(lastFailure: "the API no longer knows operation op-1"))
        #expect(harness.events.names == ["lost"])
    }

    @Test("polling past --max-wait → finished, still running, the operation kept for the next run")
    func deadlineTransition() async throws {
        let client = ScriptedExports(poll: [Self.running("op-1", 40)])
        let harness = try await Harness(client, kind: .resume, operationId: "op-1", deadline: .now - .seconds(1))
        #expect(try await harness.run.next(.polling(operationId: "op-1", delay: .milliseconds(1), since: .now)) == .finished(.stillRunning))
        let record = try await harness.record()
        #expect(record?.operationId == "op-1" && record?.phase == .running && record?.progress == 40)
        #expect(harness.events.names == ["polled", "waiting"])
    }

    @Test("downloading → finished and recorded with the file's checksum; an expired link is fetched again")
    func downloadTransition() async throws {
        let client = ScriptedExports(poll: [Self.completed("op-1")], link: [.operation(ExportOperation(id: "op-1", state: .completed))],
                                     download: [.error(.expiredDownloadLink(url: "https://files.example/op-1")), .file("a,b\n1,2\n")])
        let harness = try await Harness(client, kind: .download, operationId: "op-1")
        #expect(try await harness.run.next(.downloading(ExportOperation(id: "op-1", state: .completed))) == .finished(.done("downloaded")))
        let record = try await harness.record()
        #expect(record?.phase == .downloaded)
        #expect(record?.output?.sha256 == SHA256.hash(data: Data("a,b\n1,2\n".utf8)).hexString)
        #expect(harness.folder.read("exports/" + record!.output!.path) == "a,b\n1,2\n")
        #expect(client.calls == ["link op-1", "download op-1", "poll op-1", "link op-1", "download op-1"])
        #expect(harness.events.names == ["downloading", "relinking", "downloading", "downloading", "downloaded"])
    }

    @Test("downloading a result the API has forgotten → needs an export")
    func downloadLostTransition() async throws {
        let client = ScriptedExports(link: [.error(.searchExportNotFound(searchExportID: "s-1"))])
        let harness = try await Harness(client, kind: .download, operationId: "op-1")
        #expect(try await harness.run.next(.downloading(ExportOperation(id: "op-1", state: .completed)))
            == .needsExport(lastFailure: "the API no longer knows operation op-1"))
    }

    @Test("finished stays finished")
    func finishedTransition() async throws {
        let harness = try await Harness(ScriptedExports())
        #expect(try await harness.run.next(.finished(.stillRunning)) == .finished(.stillRunning))
    }

    // MARK: Whole runs

    @Test("a create runs to the end: created, polled, downloaded; a lost operation is exported again")
    func wholeRun() async throws {
        let client = ScriptedExports(create: [Self.running("op-2")],
                                     poll: [.error(.operationNotFound(operationID: "op-1")), Self.running("op-2", 50), Self.completed("op-2")],
                                     download: [.file("x\n")])
        let harness = try await Harness(client, kind: .resume, operationId: "op-1")
        #expect(await harness.run.execute() == .done("downloaded"))
        #expect(client.calls == ["poll op-1", "create night_owls", "poll op-2", "poll op-2", "link op-2", "download op-2"])
        let record = try await harness.record()
        #expect(record?.phase == .downloaded && record?.operationId == "op-2" && record?.attempts == 2)
    }

    @Test("a transient failure while polling keeps the operation; a refused create fails the partition")
    func failures() async throws {
        let transient = ScriptedExports(poll: [.error(.serverError(status: 503, message: nil))])
        let kept = try await Harness(transient, kind: .resume, operationId: "op-1")
        guard case .failed = await kept.run.execute() else { Issue.record("expected a failure"); return }
        let record = try await kept.record()
        #expect(record?.phase == .requested && record?.operationId == "op-1" && record?.lastError != nil)

        let refusing = ScriptedExports(create: [.error(.segmentNotFound(segmentID: "night_owls"))])
        let failed = try await Harness(refusing)
        guard case .failed(let message) = await failed.run.execute() else { Issue.record("expected a failure"); return }
        #expect(message.contains("segsync segments list"))
        #expect(try await failed.record()?.phase == .failed)
    }

    // MARK: Cancellation in every state that waits

    /// Runs the partition until `waiting` says it is in the state to cancel in (checked
    /// after every call, hang and event the client sees), cancels it, and returns the outcome.
    func cancelled(_ harness: Harness, _ client: ScriptedExports, waiting: @escaping @Sendable () async -> Bool) async throws -> ApplyReport.Outcome {
        let ended = Counter()
        let task = Task {
            let outcome = await harness.run.execute()
            ended.increment()
            client.changed.yield()  // a run that ended early wakes the wait below
            return outcome
        }
        var reached = await waiting()
        if !reached {
            for await _ in client.changes {
                reached = await waiting()
                if reached || ended.value > 0 { break }
            }
        }
        #expect(reached, "the run never reached the state to cancel in")
        task.cancel()
        return await task.value
    }

    @Test("cancelled while creating: still running, the create's intent recorded and no id")
    func cancelCreating() async throws {
        let client = ScriptedExports(create: [.hang])
        let harness = try await Harness(client)
        #expect(try await cancelled(harness, client) { client.isHanging } == .stillRunning)
        let record = try #require(try await harness.record())
        #expect(record.phase == .creating && record.intent != nil && record.operationId == nil)
    }

    @Test("cancelled while polling, and while waiting between polls: still running, the operation kept")
    func cancelPolling() async throws {
        for answers in [[ScriptedExports.Answer.hang], [Self.running("op-1")] + Array(repeating: Self.running("op-1"), count: 500)] {
            let client = ScriptedExports(poll: answers)
            let harness = try await Harness(client, kind: .resume, operationId: "op-1")
            let waiting: @Sendable () async -> Bool = { client.isHanging || client.calls.count >= 2 }
            #expect(try await cancelled(harness, client, waiting: waiting) == .stillRunning)
            let record = try await harness.record()
            #expect(record?.operationId == "op-1" && record?.phase != .failed)
        }
    }

    @Test("cancelled while waiting for a download slot, and while downloading: still running, completed kept, no file")
    func cancelDownloading() async throws {
        for slots in [0, 1] {
            let client = ScriptedExports(poll: [Self.completed("op-1")], download: [.hang])
            let harness = try await Harness(client, kind: .resume, operationId: "op-1", downloadSlots: slots)
            let waiting: @Sendable () async -> Bool = { slots == 0 ? harness.events.names.contains("polled") : client.isHanging }
            #expect(try await cancelled(harness, client, waiting: waiting) == .stillRunning)
            let record = try await harness.record()
            #expect(record?.phase == .completed && record?.operationId == "op-1" && record?.output == nil)
            #expect(harness.folder.list("exports").allSatisfy { !$0.hasSuffix(".csv") })
        }
    }
}
