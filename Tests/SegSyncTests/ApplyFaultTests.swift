import Foundation
import FullStoryContract
import SegSyncStorage
import SegSyncVocabulary
import Testing
import TestSupport
@testable import SegSync

/// Faults that concern a whole apply rather than one partition: a rejected key, the
/// lockfile that cannot be written, a create whose answer was lost, and the state writer's
/// promise that a commit has landed. In-process, against a scripted client and real SQLite.
@Suite(.timeLimit(.minutes(2))) struct ApplyFaultTests {
    static let manifestText = """
        version: 1
        exports:
          - name: night-orders
            segment: night_owls
            type: events
            format: csv
            window: { every: 1d, last: 3d, settle: 1d }
        """

    /// A workspace with three partitions, state seeded by `seed` (with the plan's actions).
    final class Workspace: @unchecked Sendable {
        let folder: TemporaryFolder
        let manifest: Manifest
        let layout: Layout
        let store: FaultyStore
        let events = Locked<[ApplyEvent]>([])

        init(seed: (inout State, [Plan.Action], Manifest) -> Void = { _, _, _ in }) async throws {
            folder = try TemporaryFolder()
            try folder.write("segsync.yaml", ApplyFaultTests.manifestText)
            manifest = try ManifestLoader.load(path: folder.path + "/segsync.yaml")
            layout = Layout(manifestPath: folder.path + "/segsync.yaml", output: manifest.output)
            try AtomicFile.makeDirectory(layout.stateDirectory)
            store = FaultyStore(try await SQLiteStateStore.open(path: layout.stateDirectory + "/state.sqlite",
                                                                lockPath: layout.stateDirectory + "/lock"))
            let actions = try plan().actions
            var state = State()
            seed(&state, actions, manifest)
            if !state.partitions.isEmpty { try await store.replace(with: state) }
        }

        func plan() throws -> Plan {
            try Planner.plan(manifest: manifest, state: State(), lockfile: Lockfile(), observed: ObservedFiles(), now: PartitionRunTests.now)
        }

        /// Plans from the store's state and applies with `client`.
        func apply(_ client: ScriptedExports, maxInFlight: Int = 32) async throws -> ApplyReport {
            let state = try await store.load()
            let snapshot = SegSync.Workspace.Snapshot(state: state, lockfile: Lockfile(), observed: ObservedFiles())
            let plan = try Planner.plan(manifest: manifest, state: state, lockfile: Lockfile(), observed: ObservedFiles(), now: PartitionRunTests.now)
            let options = Executor.Options(maxInFlight: maxInFlight, pollInterval: .milliseconds(1), maxPollInterval: .milliseconds(4))
            let executor = Executor(manifest: manifest, layout: layout, client: client, options: options,
                                    events: { [events] event in events.withLock { $0.append(event) }; client.changed.yield() })
            return try await executor.apply(plan, snapshot: snapshot, store: store)
        }

        var eventNames: [String] { events.value.map(\.name) }

        deinit { let store = store; Task { await store.close() } }
    }

    /// State with an operation recorded for each of the three partitions.
    static func seedOperations(_ state: inout State, _ actions: [Plan.Action], _ manifest: Manifest) {
        for (index, action) in actions.enumerated() {
            var record = PartitionRecord(partition: action.partition!, parameters: ExportParameters(manifest.exports[0], in: manifest),
                                         phase: .running, now: PartitionRunTests.now)
            record.operationId = "op-\(index + 1)"
            record.attempts = 1
            state[action.key] = record
        }
    }

    @Test("a rejected key stops the whole run at once, with one sentence; every recorded id is kept, nothing is exported again")
    func rejectedKeyStopsTheRun() async throws {
        let workspace = try await Workspace(seed: Self.seedOperations)
        // The first poll meets a rotated key; the other partition in flight waits until
        // the run stops it; the third is never started.
        let client = ScriptedExports(poll: [.error(.unauthorized(keyEnvironmentVariable: "FULLSTORY_API_KEY", message: nil)), .hang])
        let report = try await workspace.apply(client, maxInFlight: 2)
        #expect(report.stopped?.contains("rejected the API key from FULLSTORY_API_KEY") == true)
        #expect(report.failures.isEmpty, "the key's problem is said once, for the run: \(report.failures)")
        #expect(report.stillRunning.count == 3)
        #expect(!report.converged)
        #expect(client.calls.allSatisfy { $0.hasPrefix("poll") }, "\(client.calls)")
        let state = try await workspace.store.load()
        #expect(Set(state.partitions.values.compactMap(\.operationId)) == ["op-1", "op-2", "op-3"])
        #expect(state.partitions.values.allSatisfy { $0.phase == .running })
        // The next run resumes all three.
        let plan = try Planner.plan(manifest: workspace.manifest, state: state, lockfile: Lockfile(), observed: ObservedFiles(), now: PartitionRunTests.now)
        #expect(plan.actions.map(\.kind) == [.resume, .resume, .resume])
    }

    @Test("a lockfile that cannot be written fails the run once, at the end; the created id and the file are recorded")
    func lockfileWriteFails() async throws {
        let workspace = try await Workspace()
        // A folder at segsync.lock's path: every write of the lockfile fails.
        try FileManager.default.createDirectory(atPath: workspace.layout.lockfilePath + "/in-the-way", withIntermediateDirectories: true)
        let client = ScriptedExports(create: (1...3).map { PartitionRunTests.running("op-\($0)") },
                                     poll: (1...3).map { PartitionRunTests.completed("op-\($0)") },
                                     download: (1...3).map { _ in .file("a,b\n1,2\n") })
        let report = try await workspace.apply(client, maxInFlight: 1)
        #expect(report.failures.isEmpty, "\(report.failures)")
        #expect(report.done == 3)
        #expect(report.createCalls == 3)
        #expect(workspace.eventNames.filter { $0 == "created" }.count == 3)
        #expect(report.derivedFilesProblem?.contains(workspace.layout.lockfilePath) == true, "\(String(describing: report.derivedFilesProblem))")
        #expect(!report.converged)
        let state = try await workspace.store.load()
        #expect(state.partitions.values.allSatisfy { $0.phase == .downloaded && $0.operationId != nil })
    }

    @Test("creates go one at a time, and each one's intent is in state before it is sent")
    func createsOneAtATime() async throws {
        let workspace = try await Workspace()
        let client = ScriptedExports(create: (1...3).map { PartitionRunTests.running("op-\($0)") },
                                     poll: (1...3).map { PartitionRunTests.completed("op-\($0)") },
                                     download: [.file("x\n"), .file("y\n"), .file("z\n")])
        let intents = Locked<[Bool]>([])
        let store = workspace.store
        client.beforeCreate = { request in
            let open = try? await store.load().partitions.values.filter { $0.phase == .creating && $0.intent != nil && $0.start == request.timeRange?.start }
            intents.withLock { $0.append(open?.count == 1) }
        }
        let report = try await workspace.apply(client, maxInFlight: 32)
        #expect(report.converged && report.createCalls == 3)
        #expect(client.mostCreatesAtOnce == 1)
        #expect(intents.value == [true, true, true])
        // Creates first: no poll while a create waits to be sent.
        #expect(client.calls.prefix(3).allSatisfy { $0.hasPrefix("create ") }, "\(client.calls)")
        let state = try await store.load()
        #expect(state.partitions.values.allSatisfy { $0.intent == nil && $0.operationSource == .created && $0.attempts == 1 })
    }

    @Test("a create whose 2xx answer cannot be read counts as an attempt and in the summary, as an export with an unknown id")
    func unknownCreateCounts() async throws {
        let workspace = try await Workspace()
        let client = ScriptedExports(create: [.error(.createOutcomeUnknown(cause: "the answer could not be read", answered: true)),
                                              PartitionRunTests.running("op-2"), PartitionRunTests.running("op-3")],
                                     poll: [PartitionRunTests.completed("op-2"), PartitionRunTests.completed("op-3")],
                                     download: [.file("x\n"), .file("y\n")])
        let report = try await workspace.apply(client, maxInFlight: 1)
        #expect(report.createCalls == 3 && report.unknownCreates == 1)
        #expect(report.failures.count == 1)
        let state = try await workspace.store.load()
        // Its intent stays, answered: the next run looks for its export.
        let unknown = try #require(state.partitions.values.first { $0.phase == .creating })
        #expect(unknown.attempts == 1 && unknown.intent?.answeredAt != nil)
    }

    // MARK: The state writer's promise

    @Test("a file recorded while the lockfile is being written (SHA256SUMS in flight) is in the lockfile the run ends with")
    func lockfileChangeDuringWrite() async throws {
        let workspace = try await Workspace()
        let output = GatedOutput(FolderOutput(layout: workspace.layout))
        defer { output.release() }  // whatever happens, nothing stays held
        // Rewrites never due on their own (an hour apart): only the flushes write, so the
        // second file cannot queue behind the held write.
        let writer = StateWriter(state: State(), lockfile: Lockfile(), store: workspace.store, layout: workspace.layout, output: output,
                                 interval: .seconds(3600))
        let actions = try workspace.plan().actions
        let parameters = ExportParameters(workspace.manifest.exports[0], in: workspace.manifest)
        @Sendable func record(_ action: Plan.Action) async throws {
            let partition = action.partition!
            try await writer.update(action.key, .committed) { record in
                record = PartitionRecord(partition: partition, parameters: parameters, phase: .completed, now: PartitionRunTests.now)
            }
            let path = Layout.relativePath(for: partition, export: workspace.manifest.exports[0])
            let entry = Lockfile.Entry(path: path, sha256: String(repeating: "a", count: 64), bytes: 1, export: action.key.export,
                                       segment: "s", type: .events, format: .csv, start: partition.start, end: partition.end,
                                       fingerprint: partition.fingerprint)
            _ = try await writer.recordOutput(action.key, entry: entry, output: OutputRecord(path: path, bytes: 1, sha256: entry.sha256),
                                              now: PartitionRunTests.now)
        }
        try await record(actions[0])
        // A lockfile write that holds at SHA256SUMS; the second file lands meanwhile.
        let first = Task { try await writer.flush() }
        #expect(await waitUntil { output.held.value })
        try await record(actions[1])
        output.release()
        try await first.value
        try await writer.flush()
        let lockfile = try Lockfile.load(path: workspace.layout.lockfilePath)
        #expect(lockfile.entries.count == 2, "the file recorded during the write is missing from segsync.lock")
    }

    @Test("a committed update does not return before the store's commit has landed, and a failed commit reaches the caller")
    func commitIsAwaited() async throws {
        let workspace = try await Workspace()
        let writer = StateWriter(state: State(), lockfile: Lockfile(), store: workspace.store, layout: workspace.layout)
        let key = try workspace.plan().actions[0].key
        let partition = try workspace.plan().actions[0].partition!
        let parameters = ExportParameters(workspace.manifest.exports[0], in: workspace.manifest)
        workspace.store.close(gate: ())
        let store = workspace.store
        let update = Task {
            try await writer.update(key, .committed) { record in
                record = PartitionRecord(partition: partition, parameters: parameters, phase: .requested, now: PartitionRunTests.now)
                record?.operationId = "op-1"
            }
            store.events.withLock { $0.append("returned") }
        }
        // The commit is held at the gate; once it is let through, it must land before the
        // update returns. (Order, not time: an update that returned early marks first.)
        #expect(await waitUntil { store.commitsStarted.value == 1 })
        store.open()
        try await update.value
        #expect(store.events.value == ["committed", "returned"], "update(.committed) returned before the store committed")
        #expect(try await workspace.store.load()[key]?.operationId == "op-1")

        workspace.store.failing.withLock { $0 = { _ in true } }
        await #expect(throws: SegSyncError.self) {
            try await writer.update(key, .committed) { $0?.lastError = "x" }
        }
    }
}

/// The folder, with its first `SHA256SUMS` write held until ``release()``.
final class GatedOutput: OutputStore, @unchecked Sendable {
    let folder: FolderOutput
    let held = Locked(false)
    private let gate = Completion<Bool>()

    init(_ folder: FolderOutput) { self.folder = folder }

    func release() { gate.finish(true) }

    var location: String { folder.location }
    var checksumsLocation: String { folder.checksumsLocation }
    func observe(expected: [String: ExpectedFile], depth: ObservedFiles.Depth) async throws -> ObservedFiles {
        try await folder.observe(expected: expected, depth: depth)
    }
    func digest(_ relative: String) async throws -> String? { try await folder.digest(relative) }
    func stamp(_ relative: String) async -> OutputStamp { await folder.stamp(relative) }
    func put(_ relative: String, replacing: OutputRecord?, operationId: String,
             decide: (@Sendable (DownloadResult) async throws -> Bool)?,
             fetch: @Sendable (DownloadTarget) async throws -> DownloadResult) async throws -> OutputRecord? {
        try await folder.put(relative, replacing: replacing, operationId: operationId, decide: decide, fetch: fetch)
    }
    func delete(_ relative: String) async throws { try await folder.delete(relative) }
    func removeLeftovers(_ observed: ObservedFiles) async { await folder.removeLeftovers(observed) }
    func preflight() async throws -> [String] { try await folder.preflight() }
    func readChecksums() async throws -> String? { try await folder.readChecksums() }
    func writeChecksums(_ text: String) async throws {
        if !held.withLock({ was in defer { was = true }; return was }) { _ = await gate.value() }
        try await folder.writeChecksums(text)
    }
    func checksumsIdentity() async -> String? { await folder.checksumsIdentity() }
}
