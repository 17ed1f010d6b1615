import Crypto
import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import SegSync

// The tables, their migration, and the advisory-lock keys.
extension PostgresStateStore {

    /// Advisory lock keys: one for migrations, one per workspace for the run lock.
    static let migrationKey: Int64 = 0x5365_6753_796e_6300  // "SegSync\0"

    static func lockKey(_ workspace: String) -> Int64 {
        let digest = SHA256.hash(data: Data("segsync workspace \(workspace)".utf8))
        return digest.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }
    }

    /// Instants are seconds since 1970 in `double precision`, as in the SQLite engine:
    /// `timestamptz` keeps microseconds, which would not give back the same instant
    /// (`to_timestamp(start_at)` reads them as times).
    static let schema = [
        """
        CREATE TABLE segsync_workspaces (
            workspace text PRIMARY KEY, lineage text NOT NULL, serial bigint NOT NULL)
        """,
        """
        CREATE TABLE segsync_marks (
            workspace text NOT NULL, name text NOT NULL, value text NOT NULL, PRIMARY KEY (workspace, name))
        """,
        """
        CREATE TABLE segsync_lock_holders (
            workspace text PRIMARY KEY, host text NOT NULL, pid bigint NOT NULL, command text NOT NULL,
            started timestamptz NOT NULL, backend_pid integer NOT NULL)
        """,
        """
        CREATE TABLE segsync_parameters (
            workspace text NOT NULL, id bigint NOT NULL, text text NOT NULL, PRIMARY KEY (workspace, id))
        """,
        """
        CREATE TABLE segsync_partitions (
            workspace text NOT NULL, key text NOT NULL, export text NOT NULL,
            start_at double precision NOT NULL, end_at double precision NOT NULL, label text NOT NULL, fingerprint text NOT NULL,
            parameters_id bigint NOT NULL, phase text NOT NULL, operation_id text, operation_state text,
            progress double precision, attempts integer NOT NULL, last_error text,
            created_at double precision NOT NULL, updated_at double precision NOT NULL,
            output_path text, output_bytes bigint, output_sha256 text, output_modified double precision,
            PRIMARY KEY (workspace, key))
        """,
    ]

    /// A column kind's type here.
    static func typeName(_ kind: PartitionRow.Kind) -> String {
        switch kind {
        case .text: "text"
        case .real: "double precision"
        case .integer: "bigint"
        }
    }

    /// Creates or upgrades the schema under a transaction-scoped advisory lock, so
    /// processes migrating at once take turns and the second finds the work done.
    func migrate() async throws {
        try await transaction { [self] in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationKey))", logger: logger)
            try await connection.query("CREATE TABLE IF NOT EXISTS segsync_schema (version integer NOT NULL)", logger: logger)
            var version = try await checkedVersion() ?? 0
            if version < 1 {
                for statement in Self.schema { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await connection.query("INSERT INTO segsync_schema (version) VALUES (1)", logger: logger)
                version = 1
            }
            let upgrades = PartitionRow.upgrades(type: Self.typeName)
            while version < Self.schemaVersion {
                version += 1
                for statement in upgrades[version] ?? [] { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await connection.query(PostgresQuery(unsafeSQL: "INSERT INTO segsync_schema (version) VALUES (\(version))"), logger: logger)
            }
        }
    }

    /// The schema's version, nil when there are no segsync tables, read without writing
    /// anything (a read-only role can); an error when a newer segsync wrote it.
    func schemaVersion() async throws -> Int? {
        try await transaction("BEGIN READ ONLY") { [self] in try await checkedVersion() }
    }

    /// `schemaVersion()` inside a transaction already open.
    private func checkedVersion() async throws -> Int? {
        var version: Int?
        for try await value in try await connection.query(
            "SELECT CASE WHEN to_regclass('segsync_schema') IS NULL THEN NULL ELSE 0 END", logger: logger).decode(Int?.self) {
            version = value
        }
        guard version != nil else { return nil }
        for try await value in try await connection.query("SELECT coalesce(max(version), 0) FROM segsync_schema", logger: logger).decode(Int.self) {
            version = value
        }
        if let version, version > Self.schemaVersion {
            throw SegSyncError("\(name) has schema version \(version), newer than this segsync (\(Self.schemaVersion)); upgrade segsync.")
        }
        return version
    }
}
