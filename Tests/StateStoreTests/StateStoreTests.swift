import Foundation
import SegSync
import SegSyncStorage
import Testing
import TestSupport

/// The engines every test here runs against.
enum Engine: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// A place for a fresh state: a folder's database, or a new workspace on the server.
    /// Nil (after saying why) when the engine is not available here.
    func place(_ test: String) throws -> Place? {
        switch self {
        case .sqlite:
            let folder = try TemporaryFolder()
            return Place(engine: self, folder: folder, url: nil, workspace: "default")
        case .postgres:
            guard let url = TestDatabase.urlOrSkip(test) else { return nil }
            return Place(engine: self, folder: try TemporaryFolder(), url: url, workspace: TestDatabase.uniqueWorkspace())
        }
    }
}

/// One state's location; every ``open()`` is another connection to it, as another
/// process would have.
struct Place {
    var engine: Engine
    var folder: TemporaryFolder
    var url: String?
    var workspace: String

    func open() async throws -> any StateStore {
        switch engine {
        case .sqlite:
            return try await SQLiteStateStore.open(path: folder.path + "/state.sqlite", lockPath: folder.path + "/lock", workspace: workspace)
        case .postgres:
            return try await PostgresStateStore.open(url: url!, variable: TestDatabase.variable, workspace: workspace)
        }
    }
}

/// Records with instants as `Date()` gives them (fractions of a microsecond). Engines
/// keep instants as seconds since 1970 in a double, so one may come back a last bit
/// different: records are compared as their state document, which is what is kept.
func record(_ export: String, day: Int, phase: Phase = .requested, operation: String? = "op") -> PartitionRecord {
    let start = Date(timeIntervalSince1970: 1_795_000_000 + Double(day) * 86_400)
    let partition = Partition(export: export, start: start, end: start.addingTimeInterval(86_400), label: "day-\(day)", fingerprint: "fp\(day)")
    let spec = ExportSpec(name: export, segment: "everyone", type: .individuals, format: .json,
                          window: WindowSpec(every: Span(days: 1), cadence: .day, extent: .last(Span(days: 3)), settle: Span()),
                          timeZone: TimeZone(identifier: "UTC")!, fields: ["IndvId", "UserEmail"])
    var record = PartitionRecord(partition: partition, parameters: ExportParameters(spec, dialect: .seed, endpoint: "emulator"),
                                 phase: phase, now: start.addingTimeInterval(90_000.123_456_789))
    record.operationId = operation.map { "\($0)-\(export)-\(day)" }
    record.operationState = phase == .running ? "RUNNING" : nil
    record.progress = phase == .running ? 42.5 : nil
    record.attempts = 1
    record.lastError = phase == .failed ? "the export failed: \"quoted\" ✓" : nil
    if phase == .downloaded {
        record.output = OutputRecord(path: "\(export)/day-\(day).json", bytes: 12_345_678_901, sha256: String(repeating: "ab", count: 32), modified: 1_795_100_000.123456)
    }
    return record
}

/// The records as `segsync state pull` would print them.
func document(_ partitions: [String: PartitionRecord]) throws -> String {
    String(decoding: try StateJSON.encoder.encode(State(lineage: "l", serial: 0, partitions: partitions)), as: UTF8.self)
}

func document(_ records: [PartitionRecord]) throws -> String {
    try document(Dictionary(uniqueKeysWithValues: records.map { ($0.key.description, $0) }))
}

func changes(_ records: [PartitionRecord]) -> [StateChange] {
    records.map { StateChange($0.key.description, $0) }
}

@Suite(.serialized) struct StateStoreTests {
    @Test("a new store is empty, with no lineage until the first commit", arguments: Engine.allCases)
    func empty(engine: Engine) async throws {
        guard let place = try engine.place("empty") else { return }
        let store = try await place.open()
        let state = try await store.load()
        #expect(state.lineage.isEmpty && state.serial == 0 && state.partitions.isEmpty)
        #expect(try await store.mark("lockfile") == nil)
        await store.close()
    }

    @Test("commits are durable and whole: each bumps the serial, the lineage stays, every field round-trips",
          arguments: Engine.allCases)
    func commits(engine: Engine) async throws {
        guard let place = try engine.place("commits") else { return }
        let store = try await place.open()
        let records = [record("a", day: 1), record("a", day: 2, phase: .running), record("b", day: 1, phase: .downloaded),
                       record("b", day: 2, phase: .failed, operation: nil)]
        try await store.commit(changes(records))
        var loaded = try await store.load()
        #expect(loaded.serial == 1)
        #expect(!loaded.lineage.isEmpty)
        let lineage = loaded.lineage
        #expect(try document(loaded.partitions) == document(records))

        var changed = records[0]
        changed.phase = .completed
        try await store.commit([StateChange(changed.key.description, changed), StateChange(records[1].key.description, nil)])
        await store.close()

        // Another connection, as the next run would open it.
        let again = try await place.open()
        loaded = try await again.load()
        #expect(loaded.serial == 2)
        #expect(loaded.lineage == lineage)
        #expect(loaded.partitions.count == 3)
        #expect(try document(loaded.partitions.filter { $0.key == changed.key.description }) == document([changed]))
        #expect(loaded.partitions[records[1].key.description] == nil)
        await again.close()
    }

    @Test("replace sets lineage, serial and partitions exactly, and clears marks", arguments: Engine.allCases)
    func replace(engine: Engine) async throws {
        guard let place = try engine.place("replace") else { return }
        let store = try await place.open()
        try await store.commit(changes([record("old", day: 1)]))
        try await store.setMark("lockfile", "m")
        let records = (0..<1_500).map { record("e\($0 % 7)", day: $0, phase: .downloaded) }
        let pushed = State(lineage: "pushed-lineage", serial: 41, partitions: Dictionary(uniqueKeysWithValues: records.map { ($0.key.description, $0) }))
        try await store.replace(with: pushed)
        let loaded = try await store.load()
        #expect(loaded.lineage == pushed.lineage && loaded.serial == pushed.serial)
        #expect(try document(loaded.partitions) == document(pushed.partitions))
        #expect(try await store.mark("lockfile") == nil)
        try await store.commit(changes([record("new", day: 1)]))
        #expect(try await store.load().serial == 42)
        await store.close()
    }

    @Test("marks are set, read and cleared without moving the serial", arguments: Engine.allCases)
    func marks(engine: Engine) async throws {
        guard let place = try engine.place("marks") else { return }
        let store = try await place.open()
        try await store.setMark("lockfile", "one")
        try await store.setMark("lockfile", "two")
        #expect(try await store.mark("lockfile") == "two")
        #expect(try await store.load().serial == 0)
        try await store.setMark("lockfile", nil)
        #expect(try await store.mark("lockfile") == nil)
        await store.close()
    }

    @Test("the run lock: a second taker fails at once naming the holder, or waits for it with a timeout",
          arguments: Engine.allCases)
    func runLock(engine: Engine) async throws {
        guard let place = try engine.place("runLock") else { return }
        let first = try await place.open()
        let holder = LockHolder(host: "runner-7", pid: 4242, command: "segsync apply", started: Date(timeIntervalSince1970: 1_795_000_000))
        try await first.lock(holder, timeout: .zero)
        let second = try await place.open()
        await #expect {
            try await second.lock(.current(command: "segsync plan"), timeout: .zero)
        } throws: { error in
            let message = "\(error)"
            return message.contains("another segsync run has the lock on \(second.name)")
                && message.contains("held by pid 4242 on runner-7, 'segsync apply', started 2026-11-18T")
                && message.contains("--lock-timeout")
        }
        await #expect {
            try await second.lock(.current(command: "segsync plan"), timeout: .milliseconds(300))
        } throws: { "\($0)".contains("after waiting 0s") }
        // Released while the second waits: it gets the lock.
        let release = Task {
            try await Task.sleep(for: .milliseconds(400))
            await first.close()
        }
        try await second.lock(.current(command: "segsync plan"), timeout: .seconds(30))
        try await release.value
        await second.close()
    }

    @Test("processes creating the schema at once all succeed, and it is created once", arguments: Engine.allCases)
    func concurrentSchema(engine: Engine) async throws {
        guard let place = try engine.place("concurrentSchema") else { return }
        var fresh = place
        var database: String?
        if engine == .postgres, let url = place.url {
            // A database of its own, so the schema really is created here.
            let name = "segsync_schema_\(UUID().uuidString.lowercased().prefix(8))"
            try TestDatabase.psql("CREATE DATABASE \(name)", url: url)
            fresh.url = TestDatabase.url(url, database: name)
            database = name
        }
        let target = fresh
        let opened = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<8 {
                group.addTask {
                    let store = try await target.open()
                    try await store.commit(changes([record("e", day: index)]))
                    await store.close()
                    return 1
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(opened == 8)
        let store = try await fresh.open()
        let state = try await store.load()
        #expect(state.serial == 8)
        #expect(state.partitions.count == 8)
        await store.close()
        if let database, let url = place.url {
            #expect(try TestDatabase.psql("SELECT count(*) FROM segsync_schema", url: TestDatabase.url(url, database: database)) == "1")
            try TestDatabase.psql("DROP DATABASE \(database)", url: url)
        }
    }

    @Test("pull from SQLite, push into PostgreSQL, pull again: the same bytes")
    func roundTrip() async throws {
        guard let url = TestDatabase.urlOrSkip("roundTrip") else { return }
        let folder = try TemporaryFolder()
        let sqlite = try await SQLiteStateStore.open(path: folder.path + "/state.sqlite", lockPath: folder.path + "/lock")
        let records = (0..<500).map { index in
            record("e\(index % 5)", day: index, phase: [Phase.requested, .running, .completed, .downloaded, .failed][index % 5],
                   operation: index % 11 == 0 ? nil : "op")
        }
        try await sqlite.commit(changes(records))
        let pulled = try StateJSON.encoder.encode(try await sqlite.load())
        let postgres = try await PostgresStateStore.open(url: url, variable: TestDatabase.variable, workspace: TestDatabase.uniqueWorkspace("rt"))
        try await postgres.replace(with: try StateJSON.decodeState(pulled, source: "pull"))
        let again = try StateJSON.encoder.encode(try await postgres.load())
        #expect(again == pulled)
        // And back.
        let back = try await SQLiteStateStore.open(path: folder.path + "/back.sqlite", lockPath: folder.path + "/lock2")
        try await back.replace(with: try StateJSON.decodeState(again, source: "pull"))
        #expect(try StateJSON.encoder.encode(try await back.load()) == pulled)
        await sqlite.close()
        await postgres.close()
        await back.close()
    }

    @Test("sslmode=require connects over TLS")
    func tls() async throws {
        guard let url = TestDatabase.urlOrSkip("tls") else { return }
        let workspace = TestDatabase.uniqueWorkspace("tls")
        let store = try await PostgresStateStore.open(url: url + "?sslmode=require", variable: TestDatabase.variable, workspace: workspace)
        try await store.lock(.current(command: "test"), timeout: .zero)
        let ssl = try TestDatabase.psql(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = (SELECT backend_pid FROM segsync_lock_holders WHERE workspace = '\(workspace)')", url: url)
        #expect(ssl == "t")
        await store.close()
        await #expect { try await PostgresStateStore.open(url: url + "?sslmode=sometimes", variable: "DB", workspace: "x") } throws: {
            "\($0)".contains("DB has sslmode=sometimes; segsync understands disable")
        }
    }

    @Test("a connection that is terminated reports the loss, refuses writes, and frees the lock")
    func terminated() async throws {
        guard let url = TestDatabase.urlOrSkip("terminated") else { return }
        let workspace = TestDatabase.uniqueWorkspace("term")
        let store = try await PostgresStateStore.open(url: url, variable: TestDatabase.variable, workspace: workspace)
        try await store.lock(.current(command: "segsync apply"), timeout: .zero)
        let lost = AsyncStream<String>.makeStream()
        store.onLoss { reason in lost.continuation.yield(reason) }
        try TestDatabase.psql(
            "SELECT pg_terminate_backend(backend_pid) FROM segsync_lock_holders WHERE workspace = '\(workspace)'", url: url)
        var iterator = lost.stream.makeAsyncIterator()
        let reason = await iterator.next()
        #expect(reason?.contains("was lost, and the run lock with it") == true)
        await #expect { try await store.commit(changes([record("e", day: 1)])) } throws: { "\($0)".contains("was lost") }
        // The lock went with the connection: the next run takes it at once.
        let next = try await PostgresStateStore.open(url: url, variable: TestDatabase.variable, workspace: workspace)
        try await next.lock(.current(command: "segsync apply"), timeout: .zero)
        #expect(try await next.load().partitions.isEmpty)
        await next.close()
        await store.close()
    }

    @Test("a connection string that cannot work is a sentence without its password")
    func badURLs() async throws {
        for (url, expected) in [
            ("mysql://u:p@h/db", "DB is not a PostgreSQL connection string"),
            ("postgres://u:hunter2@127.0.0.1:1/db", "cannot connect to PostgreSQL at postgres://u@127.0.0.1:1/db (from DB)"),
            ("postgres://u@h/db?sslmode=require&pool=3", "DB has the parameter 'pool'"),
        ] {
            await #expect { try await PostgresStateStore.open(url: url, variable: "DB", workspace: "x") } throws: { error in
                "\(error)".contains(expected) && !"\(error)".contains("hunter2")
            }
        }
    }
}
