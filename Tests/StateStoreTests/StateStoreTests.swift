import Foundation
import SegSync
@testable import SegSyncStorage
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

@Suite(.serialized, .timeLimit(.minutes(5))) struct StateStoreTests {
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
        // A create's open intent, and an id adopted from the operations list.
        var creating = record("c", day: 1, phase: .creating, operation: nil)
        creating.intent = CreateIntent(sentAt: Date(timeIntervalSince1970: 1_795_000_000.25), answeredAt: Date(timeIntervalSince1970: 1_795_000_000.75),
                                       timeout: 60, clockOffset: -0.5)
        var adopted = record("c", day: 2)
        adopted.operationSource = .adopted
        let records = [record("a", day: 1), record("a", day: 2, phase: .running), record("b", day: 1, phase: .downloaded),
                       record("b", day: 2, phase: .failed, operation: nil), creating, adopted]
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
        #expect(loaded.partitions.count == 5)
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
            // Each version once: 1, then each upgrade.
            #expect(try TestDatabase.psql("SELECT count(*) || ',' || count(DISTINCT version) || ',' || max(version) FROM segsync_schema",
                                          url: TestDatabase.url(url, database: database)) == "\(PostgresStateStore.schemaVersion),\(PostgresStateStore.schemaVersion),\(PostgresStateStore.schemaVersion)")
            try TestDatabase.psql("DROP DATABASE \(database)", url: url)
        }
    }

    @Test("claimed names the operation ids records hold or disowned, in every workspace of the database", arguments: Engine.allCases)
    func claimed(engine: Engine) async throws {
        guard let place = try engine.place("claimed") else { return }
        var other = place
        other.workspace = place.workspace + "-other"
        let theirs = try await other.open()
        var gaveUp = record("b", day: 2)
        gaveUp.disowned = ["op-gone-1-\(place.workspace)", "op-gone-2-\(place.workspace)"]
        try await theirs.commit(changes([record("b", day: 1), gaveUp]))
        await theirs.close()
        let store = try await place.open()
        var mine = record("a", day: 2, phase: .failed, operation: nil)
        mine.disowned = ["op-gone-3-\(place.workspace)"]
        try await store.commit(changes([record("a", day: 1), mine]))
        let ids = (0..<450).map { "op-x-\($0)" } + ["op-a-1", "op-b-1", "op-a-2", "op-gone-2-\(place.workspace)", "op-gone-3-\(place.workspace)"]
        #expect(try await store.claimed(ids) == ["op-a-1", "op-b-1", "op-gone-2-\(place.workspace)", "op-gone-3-\(place.workspace)"])
        #expect(try await store.claimed([]) == [])
        #expect(try await store.load()[mine.key]?.disowned == mine.disowned, "kept through a load")
        await store.close()
    }

    @Test("foreignIntents are the open intents of every other workspace of the database, not this one's", arguments: Engine.allCases)
    func foreignIntents(engine: Engine) async throws {
        guard let place = try engine.place("foreignIntents") else { return }
        var other = place
        other.workspace = place.workspace + "-other"
        let sent = Date(timeIntervalSince1970: 1_796_000_000.25)
        var theirs = record("b", day: 1, phase: .creating, operation: nil)
        theirs.intent = CreateIntent(sentAt: sent, answeredAt: sent.addingTimeInterval(0.5), timeout: 60, clockOffset: -2.5)
        var settled = record("b", day: 2)
        settled.intent = nil
        let them = try await other.open()
        try await them.commit(changes([theirs, settled]))
        await them.close()
        let store = try await place.open()
        var ours = record("a", day: 1, phase: .creating, operation: nil)
        ours.intent = CreateIntent(sentAt: sent.addingTimeInterval(9), timeout: 30)
        try await store.commit(changes([ours]))
        // The PostgreSQL database is shared with other tests' workspaces: theirs are in it too.
        let foreign = try await store.foreignIntents()
        #expect(foreign.contains(theirs.intent!) && !foreign.contains(ours.intent!), "\(foreign)")
        if engine == .sqlite { #expect(foreign == [theirs.intent!]) }
        await store.close()
    }

    @Test("a state at schema 1 reads read-only without the later columns, and opening it upgrades it to the current schema, keeping every row",
          arguments: Engine.allCases)
    func upgradeFromVersion1(engine: Engine) async throws {
        guard var place = try engine.place("upgradeFromVersion1") else { return }
        var database: String?
        if engine == .postgres, let url = place.url {
            // A database of its own: its schema goes back to version 1.
            let name = "segsync_upgrade_\(UUID().uuidString.lowercased().prefix(8))"
            try TestDatabase.psql("CREATE DATABASE \(name)", url: url)
            place.url = TestDatabase.url(url, database: name)
            database = name
        }
        defer { if let database, let url = try? engine.place("drop")?.url { try? TestDatabase.psql("DROP DATABASE \(database)", url: url) } }
        var stored = record("e", day: 1, phase: .downloaded)
        stored.output?.identity = "\"etag-1\""
        stored.requestedAt = Date(timeIntervalSince1970: 1_795_000_000)
        stored.output?.exportedAt = Date(timeIntervalSince1970: 1_795_000_000)
        stored.output?.contentSHA256 = String(repeating: "c", count: 64)
        stored.output?.contentLines = 61
        stored.operationSource = .created
        stored.disowned = ["op-given-up"]
        var creating = record("e", day: 3, phase: .creating, operation: nil)
        creating.intent = CreateIntent(sentAt: Date(timeIntervalSince1970: 1_795_000_000.5), timeout: 60, clockOffset: 0.25)
        let store = try await place.open()
        try await store.commit(changes([stored, record("e", day: 2), creating]))
        await store.close()
        // Back to version 1, as an earlier segsync left it.
        let downgrade = ["output_identity", "requested_at", "output_exported_at", "output_content_sha256", "output_content_lines",
                         "intent_sent_at", "intent_answered_at", "intent_timeout", "intent_clock_offset", "operation_source", "disowned"]
            .map { "ALTER TABLE segsync_partitions DROP COLUMN \($0)" } + ["DELETE FROM segsync_schema WHERE version > 1"]
        func readOnly() async throws -> any StateStore {
            switch engine {
            case .sqlite:
                for statement in downgrade {
                    let sqlite = Process()
                    sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
                    sqlite.arguments = [place.folder.path + "/state.sqlite", statement]
                    try sqlite.run()
                    sqlite.waitUntilExit()
                    #expect(sqlite.terminationStatus == 0, "sqlite3 \(statement)")
                }
                return try await SQLiteStateStore.openReadOnly(path: place.folder.path + "/state.sqlite", lockPath: place.folder.path + "/lock", workspace: place.workspace)
            case .postgres:
                for statement in downgrade { try TestDatabase.psql(statement, url: place.url!) }
                return try await PostgresStateStore.openReadOnly(url: place.url!, variable: TestDatabase.variable, workspace: place.workspace)
            }
        }
        let old = try await readOnly()
        var expected = stored
        expected.output?.identity = nil
        expected.requestedAt = nil
        expected.output?.exportedAt = nil
        expected.output?.contentSHA256 = nil
        expected.output?.contentLines = nil
        expected.operationSource = nil
        expected.disowned = nil
        var expectedCreating = creating
        expectedCreating.intent = nil
        #expect(try document(try await old.load().partitions) == document([expected, record("e", day: 2), expectedCreating]))
        #expect(try await old.claimed(["op-given-up", "op-e-1"]) == ["op-e-1"], "a schema without the column claims by id alone")
        await old.close()
        let upgraded = try await place.open()
        stored.output?.identity = "\"etag-2\""
        try await upgraded.commit(changes([stored]))
        try await upgraded.commit(changes([creating]))
        #expect(try document(try await upgraded.load().partitions) == document([stored, record("e", day: 2), creating]))
        await upgraded.close()
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

extension Place {
    /// Runs SQL on the state behind the store's back, as a hand edit or another program
    /// would: through `store`'s own connection for SQLite, with psql for PostgreSQL.
    func sql(_ text: String, via store: any StateStore) async throws {
        switch engine {
        case .sqlite: _ = try await (store as! SQLiteStateStore).execute(text)
        case .postgres: try TestDatabase.psql(text, url: url!)
        }
    }

    /// `WHERE` for this place's rows.
    var workspaceFilter: String { "workspace = '\(workspace)'" }
}

/// What state holds and how it is reached: values out of range, read-only access, a
/// transaction that fails half-way, the pragmas durability rests on, a server that
/// stops answering (issue 18).
@Suite(.serialized, .timeLimit(.minutes(5))) struct StateStoreHardeningTests {
    @Test("numbers out of range in a stored row are clamped (progress, attempts, times), and a start that is no instant is an error naming the partition",
          arguments: Engine.allCases)
    func outOfRange(engine: Engine) async throws {
        guard let place = try engine.place("outOfRange") else { return }
        let store = try await place.open()
        let running = record("e", day: 1, phase: .running)
        let downloaded = record("e", day: 2, phase: .downloaded)
        try await store.commit(changes([running, downloaded]))
        let huge = engine == .sqlite ? "1e300" : "'1e300'::float8"
        let infinity = engine == .sqlite ? "9e999" : "'Infinity'::float8"
        try await place.sql("UPDATE segsync_partitions SET progress = \(huge), updated_at = \(infinity) WHERE \(place.workspaceFilter) AND key = '\(running.key)'", via: store)
        try await place.sql("UPDATE segsync_partitions SET output_modified = \(infinity) WHERE \(place.workspaceFilter) AND key = '\(downloaded.key)'", via: store)
        if engine == .sqlite {
            // SQLite keeps a REAL in an INTEGER column as it is.
            try await place.sql("UPDATE segsync_partitions SET attempts = 1e300 WHERE key = '\(running.key)'", via: store)
        }
        let loaded = try await store.load()
        let progress = loaded.partitions[running.key.description]?.progress
        #expect(progress == 100)
        let attempts = loaded.partitions[running.key.description]?.attempts ?? -1
        #expect(attempts == (engine == .sqlite ? Int(Int32.max) : 1))
        let updated = loaded.partitions[running.key.description]?.updatedAt.timeIntervalSince1970 ?? .nan
        #expect(PartitionRecord.instantRange.contains(updated))
        let modified = loaded.partitions[downloaded.key.description]?.output.map { $0.modified == nil }
        #expect(modified == true)
        // Every record now renders: a plan line, a listing.
        let renderable = loaded.partitions.values.allSatisfy { $0.problems.isEmpty }
        #expect(renderable)

        try await place.sql("UPDATE segsync_partitions SET start_at = \(huge) WHERE \(place.workspaceFilter) AND key = '\(downloaded.key)'", via: store)
        var message = ""
        do { _ = try await store.load() } catch { message = "\(error)" }
        #expect(message.hasPrefix("partition e@day-2 has start_at 1e+300 in \(store.name), which is not an instant"), "\(message)")
        await store.close()
    }

    @Test("a password with % in it is decoded once: pa%25ss is pa%ss, and so are user and database names")
    func urlDecoding() throws {
        let parsed = try DatabaseURL("postgres://u%40x:pa%25ss@db.example:5433/d%2541?sslmode=disable", variable: "DB")
        #expect(parsed.username == "u@x")
        #expect(parsed.password == "pa%ss")
        #expect(parsed.database == "d%41")
        #expect(!parsed.redacted.contains("pa%"))
        #expect(try DatabaseURL("postgres://u:%25@h/db?sslmode=disable", variable: "DB").password == "%")
        #expect(try DatabaseURL("postgres://u@h/db?sslmode=disable", variable: "DB").password == nil)
    }

    @Test("a role whose password has % in it connects")
    func percentPassword() async throws {
        guard let url = TestDatabase.urlOrSkip("percentPassword") else { return }
        let role = "pct_\(UUID().uuidString.lowercased().prefix(8))"
        try TestDatabase.psql("CREATE ROLE \(role) LOGIN SUPERUSER PASSWORD 'pa%ss'", url: url)
        guard try await requirePassword(role: role, url: url) else { return }
        let store = try await PostgresStateStore.open(url: try Self.url(url, user: role, password: "pa%25ss"), variable: "DB",
                                                      workspace: TestDatabase.uniqueWorkspace("pct"))
        try await store.commit(changes([record("e", day: 1)]))
        #expect(try await store.load().partitions.count == 1)
        await store.close()
        await #expect { try await PostgresStateStore.open(url: try Self.url(url, user: role, password: "pa%25sX"), variable: "DB", workspace: "x") } throws: {
            "\($0)".contains("cannot connect to PostgreSQL at postgres://\(role)@") && !"\($0)".contains("pa%")
        }
    }

    /// `url` with another user and (percent-encoded) password.
    static func url(_ url: String, user: String, password: String? = nil) throws -> String {
        var components = try #require(URLComponents(string: url))
        components.percentEncodedUser = user
        components.percentEncodedPassword = password
        return try #require(components.string)
    }

    /// Makes the server ask `role` for its password (the test cluster trusts everyone):
    /// a line at the top of pg_hba.conf, then a reload, waited for until a wrong password
    /// is refused. False (after saying why) when this process cannot edit the file.
    func requirePassword(role: String, url: String) async throws -> Bool {
        let hba = try TestDatabase.psql("SHOW hba_file", url: url)
        guard FileManager.default.isWritableFile(atPath: hba) else {
            print("skipped (PostgreSQL): percentPassword: \(hba) is not writable here, so the server cannot be made to ask for a password")
            return false
        }
        let content = try String(contentsOfFile: hba, encoding: .utf8)
        try ("host all \(role) 127.0.0.1/32 scram-sha-256\nhost all \(role) ::1/128 scram-sha-256\n" + content)
            .write(toFile: hba, atomically: false, encoding: .utf8)
        try TestDatabase.psql("SELECT pg_reload_conf()", url: url)
        let wrong = try Self.url(url, user: role, password: "wrong")
        // The reload is the event; nothing announces it, so wait for its effect.
        if await waitUntil(timeout: 30, { (try? TestDatabase.psql("SELECT 1", url: wrong)) == nil }) { return true }
        Issue.record("the server still accepts \(role) without its password after reloading \(hba)")
        return false
    }

    @Test("read-only opening creates nothing: no SQLite file where there was none, no tables in a database without them")
    func readOnlyCreatesNothing() async throws {
        let folder = try TemporaryFolder()
        let path = folder.path + "/state/state.sqlite"
        let none = try await SQLiteStateStore.openReadOnly(path: path, lockPath: folder.path + "/lock")
        #expect(try await none.load() == State(lineage: "", serial: 0))
        await none.close()
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/state"))
        // A state that exists is read, on a connection that cannot write.
        try FileManager.default.createDirectory(atPath: folder.path + "/state", withIntermediateDirectories: true)
        let writer = try await SQLiteStateStore.open(path: path, lockPath: folder.path + "/lock")
        try await writer.commit(changes([record("e", day: 1)]))
        await writer.close()
        let reader = try await SQLiteStateStore.openReadOnly(path: path, lockPath: folder.path + "/lock")
        #expect(try await reader.load().partitions.count == 1)
        await #expect(throws: (any Error).self) { try await reader.commit(changes([record("e", day: 2)])) }
        await reader.close()

        guard let url = TestDatabase.urlOrSkip("readOnlyCreatesNothing") else { return }
        let database = "segsync_ro_\(UUID().uuidString.lowercased().prefix(8))"
        try TestDatabase.psql("CREATE DATABASE \(database)", url: url)
        let fresh = TestDatabase.url(url, database: database)
        let empty = try await PostgresStateStore.openReadOnly(url: fresh, variable: "DB", workspace: "w")
        #expect(try await empty.load() == State(lineage: "", serial: 0))
        #expect(empty.name.contains("workspace 'w'"))
        await empty.close()
        #expect(try TestDatabase.psql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'segsync%'", url: fresh) == "0")
        try TestDatabase.psql("DROP DATABASE \(database)", url: url)
    }

    @Test("a role with only CONNECT and SELECT reads a workspace")
    func readOnlyRole() async throws {
        guard let url = TestDatabase.urlOrSkip("readOnlyRole") else { return }
        let workspace = TestDatabase.uniqueWorkspace("ro")
        let writer = try await PostgresStateStore.open(url: url, variable: "DB", workspace: workspace)
        try await writer.commit(changes([record("e", day: 1), record("e", day: 2, phase: .downloaded)]))
        let expected = try await writer.load()
        await writer.close()
        let role = try Self.readOnlyRole(url: url)
        let reader = try await PostgresStateStore.openReadOnly(url: try Self.url(url, user: role), variable: "DB", workspace: workspace)
        let loaded = try await reader.load()
        #expect(try StateJSON.encoder.encode(loaded) == StateJSON.encoder.encode(expected))
        await reader.close()
    }

    /// A new role that may connect and read segsync's tables, nothing more.
    static func readOnlyRole(url: String) throws -> String {
        let role = "ro_\(UUID().uuidString.lowercased().prefix(8))"
        try TestDatabase.psql("""
            CREATE ROLE \(role) LOGIN; GRANT CONNECT ON DATABASE postgres TO \(role); GRANT USAGE ON SCHEMA public TO \(role);
            GRANT SELECT ON ALL TABLES IN SCHEMA public TO \(role);
            """, url: url)
        return role
    }

    @Test("a commit that fails half-way leaves nothing of itself, serial included", arguments: Engine.allCases)
    func wholeTransaction(engine: Engine) async throws {
        guard let place = try engine.place("wholeTransaction") else { return }
        let store = try await place.open()
        try await store.commit(changes([record("base", day: 0)]))
        let before = try StateJSON.encoder.encode(try await store.load())
        // More rows than one INSERT takes (400 in SQLite, 1,000 in PostgreSQL), and one
        // the database refuses in the second INSERT, after the first has run.
        let batch = engine == .sqlite ? 400 : 1000
        let records = (0..<(batch + 200)).map { record("big", day: $0) }
        let poison = records[batch + 100].key.description
        let trigger = "segsync_test_poison_\(UUID().uuidString.lowercased().prefix(8))"
        switch engine {
        case .sqlite:
            try await place.sql("""
                CREATE TRIGGER \(trigger) BEFORE INSERT ON segsync_partitions WHEN NEW.key = '\(poison)'
                BEGIN SELECT RAISE(ABORT, 'poisoned row'); END
                """, via: store)
        case .postgres:
            try await place.sql("""
                CREATE FUNCTION \(trigger)() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN IF NEW.key = '\(poison)' AND NEW.workspace = '\(place.workspace)' THEN RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW; END $$;
                CREATE TRIGGER \(trigger) BEFORE INSERT ON segsync_partitions FOR EACH ROW EXECUTE FUNCTION \(trigger)();
                """, via: store)
        }
        var message = ""
        do { try await store.commit(changes(records)) } catch { message = "\(error)" }
        #expect(message.contains("poisoned row"), "\(message)")
        #expect(try StateJSON.encoder.encode(try await store.load()) == before)
        await store.close()
        // Another connection sees the same: nothing was committed behind the error.
        let again = try await place.open()
        #expect(try StateJSON.encoder.encode(try await again.load()) == before)
        await again.close()
        if engine == .postgres, let url = place.url {
            try TestDatabase.psql("DROP TRIGGER \(trigger) ON segsync_partitions; DROP FUNCTION \(trigger)();", url: url)
        }
    }

    @Test("the SQLite connection runs in WAL mode with synchronous=FULL, so a commit is on disk when it returns")
    func durablePragmas() async throws {
        let folder = try TemporaryFolder()
        let store = try await SQLiteStateStore.open(path: folder.path + "/state.sqlite", lockPath: folder.path + "/lock")
        #expect(try await store.execute("PRAGMA journal_mode") == ["wal"])
        #expect(try await store.execute("PRAGMA synchronous") == ["2"])  // FULL
        #expect(try await store.execute("PRAGMA busy_timeout") == ["30000"])
        await store.close()
    }

    @Test("connections to PostgreSQL have TCP keepalive on")
    func keepalive() async throws {
        guard let url = TestDatabase.urlOrSkip("keepalive") else { return }
        let workspace = TestDatabase.uniqueWorkspace("ka")
        let store = try await PostgresStateStore.open(url: url, variable: "DB", workspace: workspace)
        try await store.lock(.current(command: "test"), timeout: .zero)
        let port = try TestDatabase.psql("""
            SELECT client_port FROM pg_stat_activity WHERE pid = (SELECT backend_pid FROM segsync_lock_holders WHERE workspace = '\(workspace)')
            """, url: url)
        let sockets = try Self.run("/usr/bin/env", ["ss", "-tnoH", "state", "established", "( sport = :\(port) )"])
        #expect(sockets.contains("timer:(keepalive"), "\(sockets)")
        await store.close()
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test("a server that stops answering (its backend SIGSTOPped) fails the call within the bound and reports the loss")
    func silentServer() async throws {
        guard let url = TestDatabase.urlOrSkip("silentServer") else { return }
        let workspace = TestDatabase.uniqueWorkspace("stop")
        let store = try await PostgresStateStore.open(url: url, variable: "DB", workspace: workspace, timeout: .seconds(2))
        try await store.lock(.current(command: "segsync apply"), timeout: .zero)
        let lost = Completion<String>()
        store.onLoss { lost.finish($0) }
        let backend = try #require(Int32(try TestDatabase.psql("SELECT backend_pid FROM segsync_lock_holders WHERE workspace = '\(workspace)'", url: url)))
        #expect(kill(backend, SIGSTOP) == 0)
        defer { kill(backend, SIGCONT) }
        let started = ContinuousClock.now
        let message = await within(15) {
            do { _ = try await store.load(); return "answered" } catch { return "\(error)" }
        } ?? "still waiting after 15 s"
        let waited = ContinuousClock.now - started
        #expect(message.contains("did not answer within 2s (SEGSYNC_STATE_TIMEOUT)"), "\(message)")
        #expect(message.contains(store.name) && message.contains("this run stops here"))
        #expect(waited < .seconds(8), "\(waited)")
        let reason = await within(5) { await lost.value() }
        #expect(reason == message)
        // Nothing more goes to a store given up, and it says why at once.
        let refused = await within(5) {
            do { try await store.commit(changes([record("e", day: 1)])); return "committed" } catch { return "\(error)" }
        }
        #expect(refused?.contains("did not answer within 2s") == true, "\(refused ?? "still waiting")")
        kill(backend, SIGCONT)
        await store.close()
    }
}

/// What `value` gives, or nil when it takes more than `seconds`: a store that hangs
/// fails the test instead of hanging it (the call goes on in its own task).
func within<T: Sendable>(_ seconds: Double, _ value: @escaping @Sendable () async -> T) async -> T? {
    let result = Completion<T?>()
    Task { result.finish(await value()) }
    Task {
        try? await Task.sleep(for: .seconds(seconds))
        result.finish(nil)
    }
    return await result.value()
}
