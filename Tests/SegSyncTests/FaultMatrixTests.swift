import Crypto
import Foundation
import FullStoryContract
import SegSyncStorage
import SegSyncVocabulary
import Testing
import TestSupport
@testable import SegSync

/// A ``StateStore`` with faults between the run and a real store: commits that fail
/// (when `failing` says so), and commits held at a gate until the test opens it.
final class FaultyStore: StateStore, @unchecked Sendable {
    let base: any StateStore
    let failing = Locked<(@Sendable ([StateChange]) -> Bool)?>(nil)
    let gate = Locked<[CheckedContinuation<Void, Never>]?>(nil)
    let commitsStarted = Counter()
    /// What happened, in order: `committed` once a commit has landed in the real store;
    /// tests add their own marks.
    let events = Locked<[String]>([])

    init(_ base: any StateStore) { self.base = base }

    var name: String { base.name }

    /// Holds every commit from now on until ``open()``.
    func close(gate: Void = ()) { self.gate.withLock { $0 = $0 ?? [] } }

    func open() {
        let waiting = gate.withLock { value -> [CheckedContinuation<Void, Never>] in
            defer { value = nil }
            return value ?? []
        }
        waiting.forEach { $0.resume() }
    }

    func commit(_ changes: [StateChange]) async throws {
        commitsStarted.increment()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let held = gate.withLock { value -> Bool in
                guard value != nil else { return false }
                value!.append(continuation)
                return true
            }
            if !held { continuation.resume() }
        }
        if let failing = failing.value, failing(changes) { throw SegSyncError("cannot commit to \(name): disk I/O error.") }
        try await base.commit(changes)
        events.withLock { $0.append("committed") }
    }

    func lock(_ holder: LockHolder, timeout: Duration, waiting: @escaping @Sendable (LockHolder?) -> Void) async throws {
        try await base.lock(holder, timeout: timeout, waiting: waiting)
    }
    func load() async throws -> State { try await base.load() }
    func replace(with state: State) async throws { try await base.replace(with: state) }
    func claimed(_ operationIds: [String]) async throws -> Set<String> { try await base.claimed(operationIds) }
    func foreignIntents() async throws -> [CreateIntent] { try await base.foreignIntents() }
    func mark(_ name: String) async throws -> String? { try await base.mark(name) }
    func setMark(_ name: String, _ value: String?) async throws { try await base.setMark(name, value) }
    func onLoss(_ handler: @escaping @Sendable (String) -> Void) { base.onLoss(handler) }
    func close() async { await base.close() }
}

/// Issue 18's rule, as a table: once an operation id is recorded, every error at every
/// step after it keeps the id (the next run resumes it with no new export), but for the
/// server saying the operation is gone (a new export) and a rejected key (the whole run
/// stops, keeping every id).
@Suite(.timeLimit(.minutes(3))) struct FaultMatrixTests {
    typealias Answer = ScriptedExports.Answer

    /// Where the fault strikes, after the id is recorded.
    enum Step: String, CaseIterable, Sendable {
        case poll, link, download
        /// The commit that records the downloaded file.
        case record
    }

    /// What each error of the API client must do once an id is recorded. A switch with
    /// no default: a new case of `FullStoryAPIError` does not compile without its row.
    static func expected(_ failure: FullStoryAPIError) -> Verdict {
        switch failure {
        case .unauthorized, .missingAPIKey: .stopRun
        case .operationNotFound, .searchExportNotFound: .exportAgain
        case .invalidEndpoint, .segmentNotFound, .badRequest, .invalidRequest, .rateLimited, .serverError, .transport,
             .createOutcomeUnknown, .expiredDownloadLink, .truncatedDownload, .invalidDownload, .unexpectedResponse,
             .fileSystem, .diskFull: .keep
        }
    }

    /// One of every case.
    static let apiErrors: [FullStoryAPIError] = [
        .unauthorized(keyEnvironmentVariable: "FULLSTORY_API_KEY", message: "key rotated"),
        .missingAPIKey(keyEnvironmentVariable: "FULLSTORY_API_KEY"),
        .invalidEndpoint("the endpoint is not a URL"),
        .segmentNotFound(segmentID: "night_owls"),
        .operationNotFound(operationID: "op-1"),
        .searchExportNotFound(searchExportID: "s-1"),
        .badRequest(message: "no"),
        .invalidRequest(message: "cannot be right"),
        .rateLimited(retryAfter: .seconds(3)),
        .serverError(status: 503, message: nil),
        .transport(cause: "the connection was reset"),
        .createOutcomeUnknown(cause: "the connection closed"),
        .expiredDownloadLink(url: "https://files.example/op-1"),
        .truncatedDownload(url: "https://files.example/op-1", expectedBytes: 10, receivedBytes: 4),
        .invalidDownload(url: "https://files.example/op-1", reason: "broken gzip"),
        .unexpectedResponse(status: 200, detail: "an HTML page"),
        .fileSystem(path: "exports/x.partial", reason: "Input/output error"),
        .diskFull(folder: "exports"),
    ]

    /// Everything else a step can meet: a state store's error, a cancellation that did
    /// not come from this task, anything else thrown.
    static let otherErrors: [any Error] = [
        SegSyncError("cannot commit to .segsync/state.sqlite: database or disk is full."),
        CancellationError(),
        POSIXError(.EIO),
    ]

    @Test("the table has one row per error case, each a different case")
    func everyCaseOnce() {
        let names = Self.apiErrors.map { Mirror(reflecting: $0).children.first?.label ?? "\($0)" }
        #expect(Set(names).count == names.count)
        // Every case of the switch above appears: a sample per verdict kind at least, and
        // the verdict the code gives is the table's.
        for failure in Self.apiErrors {
            #expect(Verdict.on(failure, operationId: "op-1") == Self.expected(failure), "\(failure)")
        }
    }

    struct Row: Sendable, CustomTestStringConvertible {
        var step: Step
        var error: any Error
        var verdict: Verdict
        var testDescription: String { "\(step.rawValue): \(error)" }
    }

    static var rows: [Row] {
        var rows: [Row] = []
        for step in [Step.poll, .link, .download] {
            rows += apiErrors.map { Row(step: step, error: $0, verdict: expected($0)) }
            rows += otherErrors.map { Row(step: step, error: $0, verdict: .keep) }
        }
        // The store is all that fails at the record step.
        rows += otherErrors.map { Row(step: .record, error: $0, verdict: .keep) }
        return rows
    }

    static let downloaded = "a,b\n1,2\n"

    /// State as committed in `harness`'s SQLite file, read by a store of its own.
    static func committedState(_ harness: PartitionRunTests.Harness) async throws -> State {
        let store = try await SQLiteStateStore.open(path: harness.layout.stateDirectory + "/state.sqlite",
                                                    lockPath: harness.layout.stateDirectory + "/lock")
        do {
            let state = try await store.load()
            await store.close()
            return state
        } catch {
            await store.close()
            throw error
        }
    }

    @Test("an intent that cannot be committed sends no create, and no later commit records it: the store's error is reported, not a lost answer")
    func intentNotCommitted() async throws {
        let client = ScriptedExports(create: [PartitionRunTests.running("op-1")])
        let failures = Counter()
        let harness = try await PartitionRunTests.Harness(client) { base in
            let store = FaultyStore(base)
            // Only the first commit that carries an intent fails; later commits land.
            store.failing.withLock {
                $0 = { changes in
                    guard changes.contains(where: { $0.record?.intent != nil }), failures.value == 0 else { return false }
                    failures.increment()
                    return true
                }
            }
            return store
        }
        let outcome = await harness.executeAndClose()
        #expect(failures.value == 1)
        #expect(client.calls.filter { $0.hasPrefix("create") }.isEmpty, "nothing is sent: \(client.calls)")
        guard case .failed(let message) = outcome else { Issue.record("expected a failed outcome, got \(outcome)"); return }
        #expect(message.contains("disk I/O error"), "the store's error: \(message)")
        #expect(harness.run.unknownCreates.value == 0, "not a create whose answer was lost")
        let state = try await Self.committedState(harness)
        #expect(state.partitions.values.allSatisfy { $0.intent == nil }, "no intent for a create never sent: \(state.partitions.values)")
    }

    @Test("an error after the id is recorded keeps it, and the next run resumes it without a new export", arguments: rows)
    func keepsTheId(_ row: Row) async throws {
        let fault: Answer = .failure(row.error)
        let client = ScriptedExports(
            create: [PartitionRunTests.running("op-2")],
            poll: row.step == .poll ? [fault, PartitionRunTests.completed("op-2")]
                : [PartitionRunTests.completed("op-1"), PartitionRunTests.completed("op-2")],
            link: row.step == .link ? [fault] : [],
            download: row.step == .download ? [fault, .file(Self.downloaded)] : [.file(Self.downloaded)])
        let harness = try await PartitionRunTests.Harness(client, kind: .resume, operationId: "op-1") { base in
            let store = FaultyStore(base)
            if row.step == .record {
                store.failing.withLock { $0 = { changes in changes.contains { $0.record?.phase == .downloaded } } }
            }
            return store
        }
        let outcome = await harness.executeAndClose()
        let creates = client.calls.filter { $0.hasPrefix("create") }.count
        let state = try await Self.committedState(harness)
        let record = state.partitions.values.first

        // An expired link met while downloading is fetched again within the run (a fresh
        // look at the operation): the same export, downloaded.
        if row.step == .download, case .expiredDownloadLink? = row.error as? FullStoryAPIError {
            #expect(outcome == .done("downloaded") && creates == 0)
            #expect(record?.operationId == "op-1" && record?.phase == .downloaded)
            return
        }
        switch row.verdict {
        case .exportAgain:
            #expect(outcome == .done("downloaded"))
            #expect(creates == 1)
            #expect(record?.operationId == "op-2" && record?.phase == .downloaded)
            return
        case .stopRun:
            #expect(outcome == .stillRunning)
            #expect(harness.run.stopRun.reason != nil)
        case .keep:
            guard case .failed = outcome else { Issue.record("expected a failed outcome, got \(outcome)"); return }
        case .fail:
            Issue.record("no error ends a recorded operation as a failure")
        }
        #expect(creates == 0, "\(client.calls)")
        #expect(record?.operationId == "op-1" && record?.phase != .failed && record?.phase != .downloaded, "\(String(describing: record))")

        // The next run: the plan resumes op-1, and it ends downloaded with no create.
        let again = ScriptedExports(poll: [PartitionRunTests.completed("op-1")], download: [.file(Self.downloaded)])
        let plan = try Planner.plan(manifest: harness.manifest, state: state, lockfile: Lockfile(), observed: ObservedFiles(),
                                    now: PartitionRunTests.now)
        let action = try #require(plan.actions.first { $0.key == harness.run.action.key })
        #expect([.resume, .download].contains(action.kind) && action.operationId == "op-1", "\(action)")
        let second = try await PartitionRunTests.Harness(again, kind: action.kind, operationId: "op-1", folder: harness.folder)
        #expect(await second.executeAndClose() == .done("downloaded"))
        #expect(again.calls.filter { $0.hasPrefix("create") }.isEmpty, "\(again.calls)")
    }
}
