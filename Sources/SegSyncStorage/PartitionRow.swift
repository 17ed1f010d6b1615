import Foundation
import SegSync

/// A ``PartitionRecord`` as one row of `segsync_partitions`, column for column, the same
/// in both engines. Export parameters are stored as one JSON text (they are the same
/// for every partition of an export, so a load decodes each distinct text once).
struct PartitionRow {
    /// The columns after `workspace`, in the order both engines select and insert them.
    static let columns = [
        "key", "export", "start_at", "end_at", "label", "fingerprint", "parameters", "phase",
        "operation_id", "operation_state", "progress", "attempts", "last_error", "created_at", "updated_at",
        "output_path", "output_bytes", "output_sha256", "output_modified",
    ]

    static var columnList: String { columns.joined(separator: ", ") }

    /// Turns stored export parameters back into values, each distinct text once.
    struct ParameterCache {
        private var decoded: [String: ExportParameters] = [:]

        mutating func parameters(_ text: String, key: String) throws -> ExportParameters {
            if let known = decoded[text] { return known }
            do {
                let value = try StateJSON.decoder.decode(ExportParameters.self, from: Data(text.utf8))
                decoded[text] = value
                return value
            } catch {
                throw SegSyncError("the stored parameters of partition \(key) are damaged (\(StateJSON.describe(error))).")
            }
        }
    }

    static func parametersText(_ parameters: ExportParameters) throws -> String {
        String(decoding: try StateJSON.lineEncoder.encode(parameters), as: UTF8.self)
    }

    static func phase(_ text: String, key: String) throws -> Phase {
        guard let phase = Phase(rawValue: text) else {
            throw SegSyncError("partition \(key) has the unknown phase '\(text)' in state; a newer segsync may have written it.")
        }
        return phase
    }
}

extension PartitionRecord {
    /// A record from its stored fields; `output` only when all three output fields are set.
    init(row key: String, export: String, start: Date, end: Date, label: String, fingerprint: String,
         parameters: ExportParameters, phase: Phase, operationId: String?, operationState: String?,
         progress: Double?, attempts: Int, lastError: String?, createdAt: Date, updatedAt: Date,
         outputPath: String?, outputBytes: Int64?, outputSHA256: String?, outputModified: Double?) {
        let partition = Partition(export: export, start: start, end: end, label: label, fingerprint: fingerprint)
        self.init(partition: partition, parameters: parameters, phase: phase, now: createdAt)
        self.operationId = operationId
        self.operationState = operationState
        self.progress = progress
        self.attempts = attempts
        self.lastError = lastError
        self.updatedAt = updatedAt
        if let outputPath, let outputBytes, let outputSHA256 {
            output = OutputRecord(path: outputPath, bytes: outputBytes, sha256: outputSHA256, modified: outputModified)
        }
    }
}
