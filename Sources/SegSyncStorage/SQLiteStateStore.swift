import FileIO
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import SegSync
import SQLiteNIO

/// State in `.segsync/state.sqlite` beside the manifest: the default engine.
///
/// SQLite comes with sqlite-nio (a vendored amalgamation, the same version everywhere),
/// in WAL mode with `synchronous=FULL`, so a commit is on disk before it returns and a
/// reader (`segsync status`) never waits for a writer. The run lock is a `flock` on
/// `.segsync/lock`, as in every build before.
public final class SQLiteStateStore: StateStore, @unchecked Sendable {
    public static let schemaVersion = 5

    /// The schema version of the database as opened (below ``schemaVersion`` only when
    /// opened read-only, unmigrated).
    private var schema = SQLiteStateStore.schemaVersion
    public let path: String
    public let workspace: String
    public var name: String { Self.name(displayPath) }
    private let displayPath: String
    private let lockPath: String
    private let connection: SQLiteConnection
    /// The connection's own thread: SQLite blocks it (fsync, a busy wait) without
    /// holding up downloads, or another store's connection, on the shared pool.
    private let thread: NIOThreadPool
    /// One transaction at a time on the one connection.
    private let gate = AsyncMutex()
    private let runLock = NIOLockedValueBox<FileRunLock?>(nil)

    private init(path: String, displayPath: String, lockPath: String, workspace: String, connection: SQLiteConnection, thread: NIOThreadPool) {
        self.thread = thread
        self.path = path
        self.displayPath = displayPath
        self.lockPath = lockPath
        self.workspace = workspace
        self.connection = connection
    }

    /// Opens (creating and migrating) the database at `path`; `lockPath` is the run lock.
    public static func open(path: String, lockPath: String, workspace: String = StateSettings.defaultWorkspace,
                            displayPath: String? = nil) async throws -> SQLiteStateStore {
        let store = try await connect(path: path, lockPath: lockPath, workspace: workspace, displayPath: displayPath ?? path)
        do {
            // Switching to WAL and creating the schema need the database to themselves: a
            // process opening it at the same instant is waited for (up to 30 s).
            var attempt = 0
            while true {
                do {
                    try await store.configure()
                    _ = try await store.connection.query("PRAGMA journal_mode=WAL")
                    _ = try await store.connection.query("PRAGMA synchronous=FULL")
                    try await store.migrate()
                    break
                } catch let error as SQLiteError where error.reason == .busy && attempt < 600 {
                    attempt += 1
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        } catch {
            throw await store.failedToOpen(error)
        }
        return store
    }

    /// Opens the database at `path` for reading only (`status`, `state list|show|pull`):
    /// SQLite's `mode=ro`, no migration, and no file created where there is none. A
    /// database that does not exist, or has no segsync schema, is an empty state.
    public static func openReadOnly(path: String, lockPath: String, workspace: String = StateSettings.defaultWorkspace,
                                    displayPath: String? = nil) async throws -> any StateStore {
        let display = displayPath ?? path
        guard FileManager.default.fileExists(atPath: path) else { return NoState(name: name(display)) }
        let escaped = path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "?#%"))) ?? path
        let store = try await connect(path: path, uri: "file:\(escaped)?mode=ro", lockPath: lockPath, workspace: workspace, displayPath: display)
        do {
            try await store.configure()
            let tables = try await store.connection.query("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'segsync_schema'")
            if Self.integer(tables.first?.columns.first?.data) ?? 0 == 0 {
                await store.close()
                return NoState(name: store.name)
            }
            store.schema = try await store.checkVersion()
        } catch {
            throw await store.failedToOpen(error)
        }
        return store
    }

    static func name(_ displayPath: String) -> String { "the SQLite state \(displayPath)" }

    /// A connection to `path` (or to the `file:` URI `uri` naming it) on a thread of its own.
    private static func connect(path: String, uri: String? = nil, lockPath: String, workspace: String, displayPath: String) async throws -> SQLiteStateStore {
        let connection: SQLiteConnection
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        do {
            connection = try await SQLiteConnection.open(
                storage: .file(path: uri ?? path), threadPool: thread,
                logger: Logger(label: "segsync.sqlite", factory: { _ in SwiftLogNoOpLogHandler() }),
                on: MultiThreadedEventLoopGroup.singleton.any())
        } catch {
            try? await thread.shutdownGracefully()
            throw SegSyncError("cannot open \(name(displayPath)): \(describe(error)).")
        }
        return SQLiteStateStore(path: path, displayPath: displayPath, lockPath: lockPath, workspace: workspace, connection: connection, thread: thread)
    }

    /// The connection settings every open makes, reading or writing.
    private func configure() async throws {
        // Replaces sqlite-nio's busy handler, which retries at once and forever:
        // a sleeping wait, bounded, so a deadlock is an error and not a spin.
        _ = try await connection.query("PRAGMA busy_timeout=30000")
        // Reads map the file instead of copying every page through read(2).
        _ = try await connection.query("PRAGMA mmap_size=268435456")
    }

    /// Closes the store and says why it could not be opened.
    private func failedToOpen(_ error: any Error) async -> any Error {
        await close()
        if let error = error as? SegSyncError { return error }
        return SegSyncError("cannot prepare \(name): \(Self.describe(error)).")
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? SQLiteError { return error.message.isEmpty ? "\(error.reason)" : error.message }
        return "\(error)"
    }

    // MARK: Schema

    static let schema = [
        """
        CREATE TABLE segsync_workspaces (
            workspace TEXT PRIMARY KEY, lineage TEXT NOT NULL, serial INTEGER NOT NULL)
        """,
        """
        CREATE TABLE segsync_marks (
            workspace TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (workspace, name))
        """,
        """
        CREATE TABLE segsync_parameters (
            workspace TEXT NOT NULL, id INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (workspace, id))
        """,
        """
        CREATE TABLE segsync_partitions (
            workspace TEXT NOT NULL, key TEXT NOT NULL, export TEXT NOT NULL,
            start_at REAL NOT NULL, end_at REAL NOT NULL, label TEXT NOT NULL, fingerprint TEXT NOT NULL,
            parameters_id INTEGER NOT NULL, phase TEXT NOT NULL, operation_id TEXT, operation_state TEXT,
            progress REAL, attempts INTEGER NOT NULL, last_error TEXT,
            created_at REAL NOT NULL, updated_at REAL NOT NULL,
            output_path TEXT, output_bytes INTEGER, output_sha256 TEXT, output_modified REAL,
            PRIMARY KEY (workspace, key)) WITHOUT ROWID
        """,
    ]

    /// Creates or upgrades the schema inside one write transaction, so two processes
    /// opening a new database at once do it once.
    private func migrate() async throws {
        try await transaction(immediate: true) { [self] in
            _ = try await connection.query("CREATE TABLE IF NOT EXISTS segsync_schema (version INTEGER NOT NULL)")
            var version = try await checkVersion()
            if version < 1 {
                for statement in Self.schema { _ = try await connection.query(statement) }
                _ = try await connection.query("INSERT INTO segsync_schema (version) VALUES (1)")
                version = 1
            }
            let upgrades = PartitionRow.upgrades { kind in
                switch kind {
                case .text: "TEXT"
                case .real: "REAL"
                case .integer: "INTEGER"
                }
            }
            while version < Self.schemaVersion {
                version += 1
                for statement in upgrades[version] ?? [] { _ = try await connection.query(statement) }
                _ = try await connection.query("INSERT INTO segsync_schema (version) VALUES (\(version))")
            }
        }
    }

    /// The schema's version; an error when a newer segsync wrote it.
    @discardableResult
    private func checkVersion() async throws -> Int {
        let version = Self.integer(try await connection.query("SELECT max(version) FROM segsync_schema").first?.columns.first?.data) ?? 0
        if version > Self.schemaVersion {
            throw SegSyncError("\(name) has schema version \(version), newer than this segsync (\(Self.schemaVersion)); upgrade segsync.")
        }
        return version
    }

    // MARK: Transactions

    /// Runs `body` in a transaction, one at a time; `immediate` takes the write lock at once.
    private func transaction<T: Sendable>(immediate: Bool, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let connection = self.connection
        return try await gate.run {
            _ = try await connection.query(immediate ? "BEGIN IMMEDIATE" : "BEGIN")
            do {
                let result = try await body()
                _ = try await connection.query("COMMIT")
                return result
            } catch {
                _ = try? await connection.query("ROLLBACK")
                throw error
            }
        }
    }

    // MARK: StateStore

    public func lock(_ holder: LockHolder, timeout: Duration, waiting: @escaping @Sendable (LockHolder?) -> Void) async throws {
        let lock = try await FileRunLock.acquire(path: lockPath, holder: holder, timeout: timeout, name: name, waiting: waiting)
        runLock.withLockedValue { $0 = lock }
    }

    public func load() async throws -> State {
        do {
            return try await transaction(immediate: false) { [self] in
                let head = try await connection.query("SELECT lineage, serial FROM segsync_workspaces WHERE workspace = ?", [.text(workspace)]).first
                var state = State(lineage: head?.column("lineage")?.string ?? "", serial: head.flatMap { Self.integer($0.column("serial")) } ?? 0)
                let sets = try await connection.query("SELECT id, text FROM segsync_parameters WHERE workspace = ?", [.text(workspace)])
                let parameters = try PartitionRow.Parameters(sets.map { (Int64(Self.integer($0.column("id")) ?? 0), $0.column("text")?.string ?? "") })
                let count = try await connection.query("SELECT count(*) FROM segsync_partitions WHERE workspace = ?", [.text(workspace)])
                // Rows are turned into records as SQLite steps through them, so a large
                // state is never held twice (rows and records) at once.
                let loading = NIOLockedValueBox(Loading())
                loading.withLockedValue { $0.partitions.reserveCapacity(max(0, count.first.flatMap { Self.integer($0.columns.first?.data) } ?? 0)) }
                let name = self.name
                try await connection.query("SELECT \(PartitionRow.selectList(schema: schema) { _ in "NULL" }) FROM segsync_partitions WHERE workspace = ?", [.text(workspace)]) { row in
                    loading.withLockedValue { loading in
                        guard loading.error == nil else { return }
                        do {
                            let (key, record) = try Self.record(row, parameters: parameters, store: name)
                            loading.partitions[key] = record
                        } catch {
                            loading.error = error as? SegSyncError ?? SegSyncError("cannot read a partition row: \(error).")
                        }
                    }
                }
                let loaded = loading.withLockedValue { loading in
                    defer { loading = Loading() }
                    return loading
                }
                if let error = loaded.error { throw error }
                state.partitions = loaded.partitions
                return state
            }
        } catch let error as SegSyncError {
            throw error
        } catch {
            throw SegSyncError("cannot read \(name): \(Self.describe(error)).")
        }
    }

    /// Records read so far, row by row.
    private struct Loading: Sendable {
        var partitions: [String: PartitionRecord] = [:]
        var error: SegSyncError?
    }

    /// A state row as a record, with the key it is filed under.
    static func record(_ row: SQLiteRow, parameters: PartitionRow.Parameters, store: String) throws -> (key: String, record: PartitionRecord) {
        let columns = PartitionRow.columns.map { row.column($0) ?? .null }
        return (columns[0].string ?? "", try record(columns, parameters: parameters).clamped(in: store))
    }

    /// An integer column's value. SQLite keeps whatever it was given (a `REAL` 1e300 in
    /// an `INTEGER` column), and sqlite-nio's `integer` traps converting such a double:
    /// a double is clamped to the integers instead, and NaN is nil.
    static func integer(_ data: SQLiteData?) -> Int? {
        guard case .float(let value) = data else { return data?.integer }
        if value.isNaN { return nil }
        return value >= 0x1p63 ? .max : value < -0x1p63 ? .min : Int(value)
    }

    static func record(_ c: [SQLiteData], parameters: PartitionRow.Parameters) throws -> PartitionRecord {
        guard c.count == PartitionRow.columns.count, let key = c[0].string else {
            throw SegSyncError("a partition row in the SQLite state is damaged.")
        }
        func text(_ i: Int) throws -> String {
            guard let value = c[i].string else { throw SegSyncError("partition \(key) has no \(PartitionRow.columns[i]) in state.") }
            return value
        }
        func date(_ i: Int) throws -> Date {
            guard let value = c[i].double else { throw SegSyncError("partition \(key) has no \(PartitionRow.columns[i]) in state.") }
            return Date(timeIntervalSince1970: value)
        }
        var record = PartitionRecord(
            row: key, export: try text(1), start: try date(2), end: try date(3), label: try text(4), fingerprint: try text(5),
            parameters: try parameters.parameters(Int64(integer(c[6]) ?? 0), key: key), phase: try PartitionRow.phase(try text(7), key: key),
            operationId: c[8].string, operationState: c[9].string, progress: c[10].isNull ? nil : c[10].double,
            attempts: integer(c[11]) ?? 0, lastError: c[12].string, createdAt: try date(13), updatedAt: try date(14),
            outputPath: c[15].string, outputBytes: integer(c[16]).map(Int64.init), outputSHA256: c[17].string,
            outputModified: c[18].isNull ? nil : c[18].double, outputIdentity: c[19].string)
        record.setFinality(requestedAt: c[20].isNull ? nil : c[20].double, exportedAt: c[21].isNull ? nil : c[21].double,
                           contentSHA256: c[22].string, contentLines: integer(c[23]).map(Int64.init))
        func real(_ i: Int) -> Double? { c[i].isNull ? nil : c[i].double }
        record.setIntent(sentAt: real(24), answeredAt: real(25), timeout: real(26), clockOffset: real(27), source: c[28].string)
        record.setDisowned(c[29].string)
        return record
    }

    static func binds(_ record: PartitionRecord, key: String, parametersID: Int64) -> [SQLiteData] {
        func text(_ value: String?) -> SQLiteData { value.map { .text($0) } ?? .null }
        func real(_ value: Double?) -> SQLiteData { value.map { .float($0) } ?? .null }
        return [
            .text(key), .text(record.export), .float(record.start.timeIntervalSince1970), .float(record.end.timeIntervalSince1970),
            .text(record.label), .text(record.fingerprint), .integer(Int(parametersID)),
            .text(record.phase.rawValue), text(record.operationId), text(record.operationState), real(record.progress),
            .integer(record.attempts), text(record.lastError), .float(record.createdAt.timeIntervalSince1970),
            .float(record.updatedAt.timeIntervalSince1970), text(record.output?.path),
            record.output.map { .integer(Int($0.bytes)) } ?? .null, text(record.output?.sha256), real(record.output?.modified),
            text(record.output?.identity), real(record.requestedAt?.timeIntervalSince1970),
            real(record.output?.exportedAt?.timeIntervalSince1970), text(record.output?.contentSHA256),
            record.output?.contentLines.map { .integer(Int($0)) } ?? .null,
            real(record.intent?.sentAt.timeIntervalSince1970), real(record.intent?.answeredAt?.timeIntervalSince1970),
            real(record.intent?.timeout), real(record.intent?.clockOffset), text(record.operationSource?.rawValue),
            text(record.disownedText),
        ]
    }

    /// Writes `changes`: rows in batches of 400 (under SQLite's limit on binds).
    private func write(_ changes: [StateChange]) async throws {
        let puts = changes.filter { $0.record != nil }
        let removals = changes.filter { $0.record == nil }.map(\.key)
        var ids: [ExportParameters: Int64] = [:]
        let sets = try PartitionRow.parameterSets(puts)
        for set in Set(sets.values) {
            _ = try await connection.query("INSERT OR IGNORE INTO segsync_parameters (workspace, id, text) VALUES (?, ?, ?)",
                                           [.text(workspace), .integer(Int(set.id)), .text(set.text)])
        }
        for change in puts where ids[change.record!.parameters] == nil {
            ids[change.record!.parameters] = try PartitionRow.stored(change.record!.parameters).id
        }
        let row = "(?, " + Array(repeating: "?", count: PartitionRow.columns.count).joined(separator: ", ") + ")"
        for start in stride(from: 0, to: puts.count, by: 400) {
            let batch = puts[start..<min(start + 400, puts.count)]
            var binds: [SQLiteData] = []
            binds.reserveCapacity(batch.count * (PartitionRow.columns.count + 1))
            for change in batch {
                binds.append(.text(workspace))
                binds += Self.binds(change.record!, key: change.key, parametersID: sets[change.record!.parameters]!.id)
            }
            let values = Array(repeating: row, count: batch.count).joined(separator: ", ")
            _ = try await connection.query("INSERT OR REPLACE INTO segsync_partitions (workspace, \(PartitionRow.columnList)) VALUES \(values)", binds)
        }
        for start in stride(from: 0, to: removals.count, by: 400) {
            let batch = removals[start..<min(start + 400, removals.count)]
            let marks = Array(repeating: "?", count: batch.count).joined(separator: ", ")
            _ = try await connection.query("DELETE FROM segsync_partitions WHERE workspace = ? AND key IN (\(marks))",
                                           [.text(workspace)] + batch.map { .text($0) })
        }
    }

    public func commit(_ changes: [StateChange]) async throws {
        do {
            try await transaction(immediate: true) { [self] in
                _ = try await connection.query("""
                    INSERT INTO segsync_workspaces (workspace, lineage, serial) VALUES (?, ?, 1)
                    ON CONFLICT (workspace) DO UPDATE SET serial = serial + 1
                    """, [.text(workspace), .text(UUID().uuidString.lowercased())])
                try await write(changes)
            }
        } catch let error as SegSyncError {
            throw error
        } catch {
            throw SegSyncError("cannot commit to \(name): \(Self.describe(error)).")
        }
    }

    public func replace(with state: State) async throws {
        do {
            try await transaction(immediate: true) { [self] in
                _ = try await connection.query("DELETE FROM segsync_partitions WHERE workspace = ?", [.text(workspace)])
                _ = try await connection.query("DELETE FROM segsync_marks WHERE workspace = ?", [.text(workspace)])
                _ = try await connection.query("DELETE FROM segsync_parameters WHERE workspace = ?", [.text(workspace)])
                _ = try await connection.query("INSERT OR REPLACE INTO segsync_workspaces (workspace, lineage, serial) VALUES (?, ?, ?)",
                                               [.text(workspace), .text(state.lineage.isEmpty ? UUID().uuidString.lowercased() : state.lineage), .integer(state.serial)])
                try await write(state.partitions.map { StateChange($0.key, $0.value) })
            }
        } catch let error as SegSyncError {
            throw error
        } catch {
            throw SegSyncError("cannot write \(name): \(Self.describe(error)).")
        }
    }

    public func claimed(_ operationIds: [String]) async throws -> Set<String> {
        guard !operationIds.isEmpty else { return [] }
        do {
            return try await transaction(immediate: false) { [self] in
                var held = Set<String>()
                // Every workspace's records: the file is this database.
                for start in stride(from: 0, to: operationIds.count, by: 400) {
                    let batch = operationIds[start..<min(start + 400, operationIds.count)]
                    let marks = Array(repeating: "?", count: batch.count).joined(separator: ", ")
                    let rows = try await connection.query("SELECT operation_id FROM segsync_partitions WHERE operation_id IN (\(marks))",
                                                          batch.map { .text($0) })
                    for row in rows { if let id = row.column("operation_id")?.string { held.insert(id) } }
                }
                // And the exports some partition gave up as possibly another's (few rows).
                guard schema >= 5 else { return held }
                let disowned = try await connection.query("SELECT disowned FROM segsync_partitions WHERE disowned IS NOT NULL")
                return held.union(PartitionRow.disowned(operationIds, in: disowned.compactMap { $0.column("disowned")?.string }))
            }
        } catch {
            throw SegSyncError("cannot read \(name): \(Self.describe(error)).")
        }
    }

    public func foreignIntents() async throws -> [CreateIntent] {
        do {
            return try await transaction(immediate: false) { [self] in
                let rows = try await connection.query(
                    """
                    SELECT intent_sent_at, intent_answered_at, intent_timeout, intent_clock_offset FROM segsync_partitions
                    WHERE workspace <> ? AND intent_sent_at IS NOT NULL AND intent_timeout IS NOT NULL
                    """, [.text(workspace)])
                return rows.compactMap { row -> CreateIntent? in
                    guard let sent = row.column("intent_sent_at")?.double, let timeout = row.column("intent_timeout")?.double else { return nil }
                    return CreateIntent(sentAt: Date(timeIntervalSince1970: sent),
                                        answeredAt: row.column("intent_answered_at")?.double.map(Date.init(timeIntervalSince1970:)),
                                        timeout: timeout, clockOffset: row.column("intent_clock_offset")?.double)
                }
            }
        } catch {
            throw SegSyncError("cannot read \(name): \(Self.describe(error)).")
        }
    }

    public func mark(_ mark: String) async throws -> String? {
        do {
            return try await transaction(immediate: false) { [self] in
                try await connection.query("SELECT value FROM segsync_marks WHERE workspace = ? AND name = ?", [.text(workspace), .text(mark)])
                    .first?.column("value")?.string
            }
        } catch {
            throw SegSyncError("cannot read \(name): \(Self.describe(error)).")
        }
    }

    public func setMark(_ mark: String, _ value: String?) async throws {
        do {
            try await transaction(immediate: true) { [self] in
                if let value {
                    _ = try await connection.query("INSERT OR REPLACE INTO segsync_marks (workspace, name, value) VALUES (?, ?, ?)",
                                                   [.text(workspace), .text(mark), .text(value)])
                } else {
                    _ = try await connection.query("DELETE FROM segsync_marks WHERE workspace = ? AND name = ?", [.text(workspace), .text(mark)])
                }
            }
        } catch {
            throw SegSyncError("cannot write \(name): \(Self.describe(error)).")
        }
    }

    public func onLoss(_ handler: @escaping @Sendable (String) -> Void) {}

    /// Runs `sql` on the store's own connection, outside any transaction, and returns
    /// each row's first column as text: for tests, which read the pragmas a connection
    /// really has (`synchronous` is per connection) and install faults.
    func execute(_ sql: String) async throws -> [String] {
        let connection = self.connection
        return try await gate.run {
            try await connection.query(sql).map { $0.columns.first?.data.string ?? "" }
        }
    }

    public func close() async {
        try? await connection.close().get()
        try? await thread.shutdownGracefully()
        runLock.withLockedValue { $0 = nil }
    }
}
