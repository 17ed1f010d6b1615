import Crypto
import Foundation
import SegSync

/// A ``PartitionRecord`` as one row of `segsync_partitions`, column for column, the same
/// in both engines. Export parameters are the same for every partition of an export, so
/// each distinct set is stored once, as JSON in `segsync_parameters`, and rows refer to
/// it by an id derived from its text: a load decodes each set once and rows carry an
/// integer, not 200 bytes of JSON.
struct PartitionRow {
    /// The columns after `workspace`, in the order both engines select and insert them.
    static let columns = [
        "key", "export", "start_at", "end_at", "label", "fingerprint", "parameters_id", "phase",
        "operation_id", "operation_state", "progress", "attempts", "last_error", "created_at", "updated_at",
        "output_path", "output_bytes", "output_sha256", "output_modified", "output_identity",
    ]

    static var columnList: String { columns.joined(separator: ", ") }

    /// What a load selects from a database at schema version `schema`: one still at
    /// version 1 (read without migrating it) has no `output_identity`, read as `null`
    /// (`nullText`, the engine's way of writing a null text).
    static func selectList(schema: Int, nullText: String) -> String {
        columns.map { $0 == "output_identity" && schema < 2 ? "\(nullText) AS output_identity" : $0 }.joined(separator: ", ")
    }

    /// Each schema version's changes after the first.
    static func upgrades(textType: String) -> [Int: [String]] {
        [2: ["ALTER TABLE segsync_partitions ADD COLUMN output_identity \(textType)"]]
    }

    /// The stored export parameters of a workspace, by id.
    struct Parameters {
        private var byID: [Int64: ExportParameters] = [:]

        /// Decodes `segsync_parameters` rows.
        init(_ rows: [(id: Int64, text: String)]) throws {
            for row in rows {
                do {
                    byID[row.id] = try StateJSON.decoder.decode(ExportParameters.self, from: Data(row.text.utf8))
                } catch {
                    throw SegSyncError("stored export parameters \(row.id) are damaged (\(StateJSON.describe(error))).")
                }
            }
        }

        func parameters(_ id: Int64, key: String) throws -> ExportParameters {
            guard let value = byID[id] else {
                throw SegSyncError("partition \(key) refers to export parameters \(id), which state does not have.")
            }
            return value
        }
    }

    /// The text and id of `parameters`: the id is the first 8 bytes of the text's SHA-256.
    static func stored(_ parameters: ExportParameters) throws -> StoredText {
        let data = try StateJSON.lineEncoder.encode(parameters)
        let id = SHA256.hash(data: data).withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }
        return StoredText(id: id, text: String(decoding: data, as: UTF8.self))
    }

    /// The distinct parameter sets of `changes`, each encoded and hashed once.
    static func parameterSets(_ changes: some Sequence<StateChange>) throws -> [ExportParameters: StoredText] {
        var sets: [ExportParameters: StoredText] = [:]
        for change in changes {
            guard let parameters = change.record?.parameters, sets[parameters] == nil else { continue }
            sets[parameters] = try stored(parameters)
        }
        return sets
    }

    static func phase(_ text: String, key: String) throws -> Phase {
        guard let phase = Phase(rawValue: text) else {
            throw SegSyncError("partition \(key) has the unknown phase '\(text)' in state; a newer segsync may have written it.")
        }
        return phase
    }
}

/// One stored parameter set: its id and JSON text.
struct StoredText: Hashable {
    var id: Int64
    var text: String
}

extension PartitionRecord {
    /// A record from its stored fields; `output` only when all three output fields are set.
    init(row key: String, export: String, start: Date, end: Date, label: String, fingerprint: String,
         parameters: ExportParameters, phase: Phase, operationId: String?, operationState: String?,
         progress: Double?, attempts: Int, lastError: String?, createdAt: Date, updatedAt: Date,
         outputPath: String?, outputBytes: Int64?, outputSHA256: String?, outputModified: Double?, outputIdentity: String?) {
        let partition = Partition(export: export, start: start, end: end, label: label, fingerprint: fingerprint)
        self.init(partition: partition, parameters: parameters, phase: phase, now: createdAt)
        self.operationId = operationId
        self.operationState = operationState
        self.progress = progress
        self.attempts = attempts
        self.lastError = lastError
        self.updatedAt = updatedAt
        if let outputPath, let outputBytes, let outputSHA256 {
            output = OutputRecord(path: outputPath, bytes: outputBytes, sha256: outputSHA256, modified: outputModified, identity: outputIdentity)
        }
    }
}
