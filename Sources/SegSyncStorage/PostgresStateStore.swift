import Crypto
import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import SegSync

/// State in a PostgreSQL database that several runners share, one `workspace` per
/// manifest (module doc: README "State").
///
/// Everything happens on one dedicated connection. The run lock is a session advisory
/// lock on it, so a runner that dies — SIGKILL, a lost VM — loses its lock with its
/// connection: there are no stale locks and nothing to force-unlock. State is written on
/// the same connection, so once it is gone nothing more can be written under a lock this
/// run no longer holds; ``onLoss(_:)`` tells the run to stop.
public final class PostgresStateStore: StateStore, @unchecked Sendable {
    public static let schemaVersion = 5
    /// The schema version of the database as opened (below ``schemaVersion`` only when
    /// opened read-only, unmigrated).
    var schema = PostgresStateStore.schemaVersion
    /// How long one state call (a transaction, a lock attempt) may take by default: far
    /// more than a healthy server needs, and short enough that a run whose server stopped
    /// answering stops before another runner may have taken its lock.
    public static let defaultTimeout: Duration = .seconds(30)

    public let workspace: String
    /// The bound on every state call; past it the connection counts as lost.
    public let timeout: Duration
    public var name: String { "the PostgreSQL state (workspace '\(workspace)' at \(redactedURL))" }
    private let redactedURL: String
    let connection: PostgresConnection
    let logger = Logger(label: "segsync.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
    /// One transaction at a time on the one connection.
    private let gate = AsyncMutex()
    private let status = NIOLockedValueBox(Status())

    private struct Status {
        var closing = false
        var lost: String?
        var handlers: [@Sendable (String) -> Void] = []
    }

    private init(workspace: String, redactedURL: String, connection: PostgresConnection, timeout: Duration) {
        self.workspace = workspace
        self.timeout = timeout
        self.redactedURL = redactedURL
        self.connection = connection
    }

    /// Connects with the connection string in `variable` (its value is `url`) and creates
    /// or migrates the schema. Every call waits at most `timeout` for the server.
    public static func open(url: String, variable: String, workspace: String,
                            timeout: Duration = defaultTimeout) async throws -> PostgresStateStore {
        let store = try await connect(url: url, variable: variable, workspace: workspace, timeout: timeout)
        do {
            try await store.migrate()
        } catch {
            throw await store.failedToOpen(error)
        }
        return store
    }

    /// Connects for reading only (`status`, `state list|show|pull`): no CREATE or ALTER,
    /// so a role with only CONNECT and SELECT can watch a workspace. A database without
    /// segsync's tables is an empty state.
    public static func openReadOnly(url: String, variable: String, workspace: String,
                                    timeout: Duration = defaultTimeout) async throws -> any StateStore {
        let store = try await connect(url: url, variable: variable, workspace: workspace, timeout: timeout)
        do {
            guard let version = try await store.schemaVersion() else {
                await store.close()
                return NoState(name: store.name)
            }
            store.schema = version
        } catch {
            throw await store.failedToOpen(error)
        }
        return store
    }

    private static func connect(url: String, variable: String, workspace: String, timeout: Duration) async throws -> PostgresStateStore {
        let parsed = try DatabaseURL(url, variable: variable)
        let connection: PostgresConnection
        do {
            connection = try await parsed.connect(logger: Logger(label: "segsync.postgres", factory: { _ in SwiftLogNoOpLogHandler() }))
        } catch {
            throw SegSyncError("cannot connect to PostgreSQL at \(parsed.redacted) (from \(variable)): \(describe(error)).")
        }
        let store = PostgresStateStore(workspace: workspace, redactedURL: parsed.redacted, connection: connection, timeout: timeout)
        connection.closeFuture.whenComplete { _ in store.connectionClosed() }
        return store
    }

    /// Closes the store and says why it could not be opened.
    private func failedToOpen(_ error: any Error) async -> any Error {
        await close()
        if let error = error as? SegSyncError { return error }
        return SegSyncError("cannot prepare \(name): \(Self.describe(error)).")
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return message + (error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
            }
            switch error.code {
            case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown: return "the connection was closed"
            case .connectionError: return error.underlying.map { "\($0)" } ?? "connection error"
            case .sslUnsupported: return "the server does not offer TLS, which sslmode asks for"
            default: return "\(error.code)"
            }
        }
        if let error = error as? PostgresTransactionError {
            return describe(error.closureError ?? error.commitError ?? error.beginError ?? error)
        }
        return "\(error)"
    }

    private func connectionClosed() {
        lose("the connection to \(name) was lost, and the run lock with it; this run stops here and writes nothing more. Operations already recorded are resumed by the next run.")
    }

    /// A call the server did not answer within ``timeout``: the connection is given up
    /// as if it had closed, since a server that stopped answering may also have dropped
    /// the session and the run lock with it.
    private func timedOut() {
        lose("\(name) did not answer within \(Span.describe(timeout)) (SEGSYNC_STATE_TIMEOUT), so the connection is given up, and the run lock may be gone with it; this run stops here and writes nothing more. Operations already recorded are resumed by the next run.")
        let connection = self.connection
        // Not awaited: closing fails the call still waiting, which frees the gate.
        Task { try? await connection.close() }
    }

    /// Marks the store lost (once, unless it is being closed) and tells the handlers.
    private func lose(_ reason: String) {
        let handlers: [@Sendable (String) -> Void] = status.withLockedValue { status in
            guard !status.closing, status.lost == nil else { return [] }
            status.lost = reason
            return status.handlers
        }
        for handler in handlers { handler(reason) }
    }

    public func onLoss(_ handler: @escaping @Sendable (String) -> Void) {
        let lost: String? = status.withLockedValue { status in
            if status.lost == nil { status.handlers.append(handler) }
            return status.lost
        }
        if let lost { handler(lost) }
    }

    // MARK: Transactions

    func transaction<T: Sendable>(_ begin: String = "BEGIN", _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let connection = self.connection, logger = self.logger
        return try await bounded {
            try await connection.query(PostgresQuery(unsafeSQL: begin), logger: logger)
            let result: T
            do {
                result = try await body()
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
            try await connection.query("COMMIT", logger: logger)
            return result
        }
    }

    /// Runs `body` on the connection, one at a time, waiting at most ``timeout`` for it
    /// (the queue included). `body` goes on in its task when the wait runs out: the
    /// connection is closed under it, which ends it.
    private func bounded<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try ensureOpen()
        let gate = self.gate, limit = timeout
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let waiting = NIOLockedValueBox<CheckedContinuation<T, any Error>?>(continuation)
            let take: @Sendable () -> CheckedContinuation<T, any Error>? = {
                waiting.withLockedValue { waiting in defer { waiting = nil }; return waiting }
            }
            let timer = Task { [self] in
                try await Task.sleep(for: limit)
                guard let continuation = take() else { return }
                timedOut()
                continuation.resume(throwing: SegSyncError(status.withLockedValue { $0.lost } ?? "\(name) did not answer."))
            }
            Task {
                do {
                    let value = try await gate.run(body)
                    take()?.resume(returning: value)
                } catch {
                    take()?.resume(throwing: error)
                }
                timer.cancel()
            }
        }
    }

    private func failure(_ doing: String, _ error: any Error) -> any Error {
        if let error = error as? SegSyncError { return error }
        if let lost = status.withLockedValue({ $0.lost }) { return SegSyncError(lost) }
        return SegSyncError("cannot \(doing) \(name): \(Self.describe(error)).")
    }

    // MARK: StateStore

    public func lock(_ holder: LockHolder, timeout: Duration, waiting: @escaping @Sendable (LockHolder?) -> Void) async throws {
        let key = Self.lockKey(workspace)
        let deadline = ContinuousClock.now + timeout
        var said = false
        do {
            while true {
                let connection = self.connection, logger = self.logger, workspace = self.workspace
                let taken = try await bounded {
                    var taken = false
                    for try await value in try await connection.query("SELECT pg_try_advisory_lock(\(key))", logger: logger).decode(Bool.self) {
                        taken = value
                    }
                    if taken {
                        try await connection.query("""
                            INSERT INTO segsync_lock_holders (workspace, host, pid, command, started, backend_pid)
                            VALUES (\(workspace), \(holder.host), \(Int64(holder.pid)), \(holder.command), \(holder.started), pg_backend_pid())
                            ON CONFLICT (workspace) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid,
                                command = EXCLUDED.command, started = EXCLUDED.started, backend_pid = EXCLUDED.backend_pid
                            """, logger: logger)
                    }
                    return taken
                }
                if taken { return }
                guard ContinuousClock.now < deadline else {
                    throw lockTakenError(name, holder: try await currentHolder(), waited: timeout)
                }
                if !said {
                    said = true
                    waiting(try await currentHolder())
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        } catch {
            throw failure("lock", error)
        }
    }

    private func currentHolder() async throws -> LockHolder? {
        try await transaction { [self] in
            let rows = try await connection.query(
                "SELECT host, pid, command, started FROM segsync_lock_holders WHERE workspace = \(workspace)", logger: logger)
            for try await (host, pid, command, started) in rows.decode((String, Int64, String, Date).self) {
                return LockHolder(host: host, pid: Int(pid), command: command, started: started)
            }
            return nil
        }
    }

    public func load() async throws -> State {
        do {
            return try await transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { [self] in
                var state = State(lineage: "", serial: 0)
                for try await (lineage, serial) in try await connection.query(
                    "SELECT lineage, serial FROM segsync_workspaces WHERE workspace = \(workspace)", logger: logger).decode((String, Int64).self) {
                    state.lineage = lineage
                    state.serial = Int(serial)
                }
                var sets: [(id: Int64, text: String)] = []
                for try await (id, text) in try await connection.query(
                    "SELECT id, text FROM segsync_parameters WHERE workspace = \(workspace)", logger: logger).decode((Int64, String).self) {
                    sets.append((id, text))
                }
                let parameters = try PartitionRow.Parameters(sets)
                let rows = try await connection.query(
                    PostgresQuery(unsafeSQL: "SELECT \(PartitionRow.selectList(schema: schema) { "NULL::" + Self.typeName($0) }) FROM segsync_partitions WHERE workspace = $1",
                                  binds: try Self.bindings([workspace])), logger: logger)
                for try await row in rows.decode(Row.self) {
                    var record = PartitionRecord(
                        row: row.0, export: row.1, start: Date(timeIntervalSince1970: row.2), end: Date(timeIntervalSince1970: row.3),
                        label: row.4, fingerprint: row.5,
                        parameters: try parameters.parameters(row.6, key: row.0), phase: try PartitionRow.phase(row.7, key: row.0),
                        operationId: row.8, operationState: row.9, progress: row.10, attempts: Int(row.11), lastError: row.12,
                        createdAt: Date(timeIntervalSince1970: row.13), updatedAt: Date(timeIntervalSince1970: row.14), outputPath: row.15, outputBytes: row.16, outputSHA256: row.17,
                        outputModified: row.18, outputIdentity: row.19)
                    record.setFinality(requestedAt: row.20, exportedAt: row.21, contentSHA256: row.22, contentLines: row.23)
                    record.setIntent(sentAt: row.24, answeredAt: row.25, timeout: row.26, clockOffset: row.27, source: row.28)
                    record.setDisowned(row.29)
                    state.partitions[row.0] = try record.clamped(in: name)
                }
                return state
            }
        } catch {
            throw failure("read", error)
        }
    }

    typealias Row = (String, String, Double, Double, String, String, Int64, String, String?, String?, Double?,
                     Int32, String?, Double, Double, String?, Int64?, String?, Double?, String?,
                     Double?, Double?, String?, Int64?, Double?, Double?, Double?, Double?, String?, String?)

    static func bindings(_ values: [String]) throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values { bindings.append(value) }
        return bindings
    }

    /// Upserts in batches of 1,000 rows (PostgreSQL takes at most 65,535 binds).
    private func write(_ changes: [StateChange]) async throws {
        let puts = changes.filter { $0.record != nil }
        let removals = changes.filter { $0.record == nil }.map(\.key)
        let width = PartitionRow.columns.count + 1
        let updates = PartitionRow.columns.dropFirst().map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        let sets = try PartitionRow.parameterSets(puts)
        for set in Set(sets.values) {
            try await connection.query("""
                INSERT INTO segsync_parameters (workspace, id, text) VALUES (\(workspace), \(set.id), \(set.text))
                ON CONFLICT (workspace, id) DO NOTHING
                """, logger: logger)
        }
        for start in stride(from: 0, to: puts.count, by: 1000) {
            let batch = puts[start..<min(start + 1000, puts.count)]
            var bindings = PostgresBindings(capacity: batch.count * width)
            var rows: [String] = []
            for (index, change) in batch.enumerated() {
                let record = change.record!
                bindings.append(workspace)
                bindings.append(change.key)
                bindings.append(record.export)
                bindings.append(record.start.timeIntervalSince1970)
                bindings.append(record.end.timeIntervalSince1970)
                bindings.append(record.label)
                bindings.append(record.fingerprint)
                bindings.append(sets[record.parameters]!.id)
                bindings.append(record.phase.rawValue)
                bindings.append(record.operationId)
                bindings.append(record.operationState)
                bindings.append(record.progress)
                bindings.append(Int32(clamping: record.attempts))
                bindings.append(record.lastError)
                bindings.append(record.createdAt.timeIntervalSince1970)
                bindings.append(record.updatedAt.timeIntervalSince1970)
                bindings.append(record.output?.path)
                bindings.append(record.output?.bytes)
                bindings.append(record.output?.sha256)
                bindings.append(record.output?.modified)
                bindings.append(record.output?.identity)
                bindings.append(record.requestedAt?.timeIntervalSince1970)
                bindings.append(record.output?.exportedAt?.timeIntervalSince1970)
                bindings.append(record.output?.contentSHA256)
                bindings.append(record.output?.contentLines)
                bindings.append(record.intent?.sentAt.timeIntervalSince1970)
                bindings.append(record.intent?.answeredAt?.timeIntervalSince1970)
                bindings.append(record.intent?.timeout)
                bindings.append(record.intent?.clockOffset)
                bindings.append(record.operationSource?.rawValue)
                bindings.append(record.disownedText)
                rows.append("(" + (1...width).map { "$\(index * width + $0)" }.joined(separator: ", ") + ")")
            }
            let sql = """
                INSERT INTO segsync_partitions (workspace, \(PartitionRow.columnList)) VALUES \(rows.joined(separator: ", "))
                ON CONFLICT (workspace, key) DO UPDATE SET \(updates)
                """
            try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
        }
        for start in stride(from: 0, to: removals.count, by: 1000) {
            let batch = Array(removals[start..<min(start + 1000, removals.count)])
            try await connection.query("DELETE FROM segsync_partitions WHERE workspace = \(workspace) AND key = ANY(\(batch))", logger: logger)
        }
    }

    private func ensureOpen() throws {
        if let lost = status.withLockedValue({ $0.lost }) { throw SegSyncError(lost) }
    }

    public func commit(_ changes: [StateChange]) async throws {
        do {
            try ensureOpen()
            try await transaction { [self] in
                try await connection.query("""
                    INSERT INTO segsync_workspaces (workspace, lineage, serial) VALUES (\(workspace), \(UUID().uuidString.lowercased()), 1)
                    ON CONFLICT (workspace) DO UPDATE SET serial = segsync_workspaces.serial + 1
                    """, logger: logger)
                try await write(changes)
            }
        } catch {
            throw failure("commit to", error)
        }
    }

    public func replace(with state: State) async throws {
        do {
            try ensureOpen()
            try await transaction { [self] in
                try await connection.query("DELETE FROM segsync_partitions WHERE workspace = \(workspace)", logger: logger)
                try await connection.query("DELETE FROM segsync_marks WHERE workspace = \(workspace)", logger: logger)
                try await connection.query("DELETE FROM segsync_parameters WHERE workspace = \(workspace)", logger: logger)
                let lineage = state.lineage.isEmpty ? UUID().uuidString.lowercased() : state.lineage
                try await connection.query("""
                    INSERT INTO segsync_workspaces (workspace, lineage, serial) VALUES (\(workspace), \(lineage), \(Int64(state.serial)))
                    ON CONFLICT (workspace) DO UPDATE SET lineage = EXCLUDED.lineage, serial = EXCLUDED.serial
                    """, logger: logger)
                try await write(state.partitions.map { StateChange($0.key, $0.value) })
            }
        } catch {
            throw failure("write", error)
        }
    }

    public func claimed(_ operationIds: [String]) async throws -> Set<String> {
        guard !operationIds.isEmpty else { return [] }
        do {
            return try await transaction { [self] in
                var held = Set<String>()
                // Every workspace's records: another manifest's run may have made the export.
                for try await id in try await connection.query(
                    "SELECT operation_id FROM segsync_partitions WHERE operation_id = ANY(\(operationIds))", logger: logger).decode(String.self) {
                    held.insert(id)
                }
                // And the exports some partition gave up as possibly another's (few rows).
                guard schema >= 5 else { return held }
                var disowned: [String] = []
                for try await text in try await connection.query(
                    "SELECT disowned FROM segsync_partitions WHERE disowned IS NOT NULL", logger: logger).decode(String.self) {
                    disowned.append(text)
                }
                return held.union(PartitionRow.disowned(operationIds, in: disowned))
            }
        } catch {
            throw failure("read", error)
        }
    }

    public func foreignIntents() async throws -> [CreateIntent] {
        do {
            return try await transaction { [self] in
                var intents: [CreateIntent] = []
                for try await (sent, answered, timeout, offset) in try await connection.query(
                    """
                    SELECT intent_sent_at, intent_answered_at, intent_timeout, intent_clock_offset FROM segsync_partitions
                    WHERE workspace <> \(workspace) AND intent_sent_at IS NOT NULL AND intent_timeout IS NOT NULL
                    """, logger: logger).decode((Double, Double?, Double, Double?).self) {
                    intents.append(CreateIntent(sentAt: Date(timeIntervalSince1970: sent), answeredAt: answered.map(Date.init(timeIntervalSince1970:)),
                                                timeout: timeout, clockOffset: offset))
                }
                return intents
            }
        } catch {
            throw failure("read", error)
        }
    }

    public func mark(_ mark: String) async throws -> String? {
        do {
            return try await transaction { [self] in
                for try await value in try await connection.query(
                    "SELECT value FROM segsync_marks WHERE workspace = \(workspace) AND name = \(mark)", logger: logger).decode(String.self) {
                    return value
                }
                return nil
            }
        } catch {
            throw failure("read", error)
        }
    }

    public func setMark(_ mark: String, _ value: String?) async throws {
        do {
            try ensureOpen()
            _ = try await transaction { [self] in
                if let value {
                    try await connection.query("""
                        INSERT INTO segsync_marks (workspace, name, value) VALUES (\(workspace), \(mark), \(value))
                        ON CONFLICT (workspace, name) DO UPDATE SET value = EXCLUDED.value
                        """, logger: logger)
                } else {
                    try await connection.query("DELETE FROM segsync_marks WHERE workspace = \(workspace) AND name = \(mark)", logger: logger)
                }
            }
        } catch {
            throw failure("write", error)
        }
    }

    public func close() async {
        status.withLockedValue { $0.closing = true }
        try? await connection.close()
    }
}
