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
        "requested_at", "output_exported_at", "output_content_sha256", "output_content_lines",
        "intent_sent_at", "intent_answered_at", "intent_timeout", "intent_clock_offset", "operation_source",
        "disowned",
    ]

    /// The schema version each column after the first version's arrived in, and its kind.
    static let added: [String: (version: Int, kind: Kind)] = [
        "output_identity": (2, .text),
        "requested_at": (3, .real), "output_exported_at": (3, .real), "output_content_sha256": (3, .text),
        "output_content_lines": (3, .integer),
        "intent_sent_at": (4, .real), "intent_answered_at": (4, .real), "intent_timeout": (4, .real),
        "intent_clock_offset": (4, .real), "operation_source": (4, .text),
        "disowned": (5, .text),
    ]

    enum Kind { case text, real, integer }

    static var columnList: String { columns.joined(separator: ", ") }

    /// What a load selects from a database at schema version `schema`: a column a later
    /// version added is read as null from one still older (read without migrating it);
    /// `null` writes the engine's typed null.
    static func selectList(schema: Int, null: (Kind) -> String) -> String {
        columns.map { column in
            guard let added = added[column], schema < added.version else { return column }
            return "\(null(added.kind)) AS \(column)"
        }.joined(separator: ", ")
    }

    /// Each schema version's changes after the first, in the engine's type names.
    static func upgrades(type: (Kind) -> String) -> [Int: [String]] {
        var upgrades: [Int: [String]] = [:]
        for column in columns {
            guard let added = added[column] else { continue }
            upgrades[added.version, default: []].append("ALTER TABLE segsync_partitions ADD COLUMN \(column) \(type(added.kind))")
        }
        return upgrades
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

    /// The columns schema 3 added: the current operation's creation time, and the
    /// output's export time and content digest.
    mutating func setFinality(requestedAt: Double?, exportedAt: Double?, contentSHA256: String?, contentLines: Int64?) {
        self.requestedAt = requestedAt.map(Date.init(timeIntervalSince1970:))
        output?.exportedAt = exportedAt.map(Date.init(timeIntervalSince1970:))
        output?.contentSHA256 = contentSHA256
        output?.contentLines = contentLines
    }

    /// The columns schema 4 added: an open create's intent, and how the operation id was
    /// learned. An intent needs its send time and timeout; a source segsync does not know
    /// (a newer one's) reads as unknown.
    mutating func setIntent(sentAt: Double?, answeredAt: Double?, timeout: Double?, clockOffset: Double?, source: String?) {
        if let sentAt, let timeout {
            intent = CreateIntent(sentAt: Date(timeIntervalSince1970: sentAt), answeredAt: answeredAt.map(Date.init(timeIntervalSince1970:)),
                                  timeout: timeout, clockOffset: clockOffset)
        }
        operationSource = source.flatMap(OperationSource.init(rawValue:))
    }

    /// The column schema 5 added: the disowned operation ids, a JSON array (unreadable
    /// text reads as none: it only ever narrows what may be adopted).
    mutating func setDisowned(_ text: String?) {
        disowned = text.flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// ``disowned`` as stored: a JSON array, or null for none.
    var disownedText: String? {
        guard let disowned, !disowned.isEmpty, let data = try? JSONEncoder().encode(disowned) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}

extension PartitionRow {
    /// Of `operationIds`, those some stored `disowned` column (a JSON array) lists.
    static func disowned(_ operationIds: [String], in texts: some Sequence<String>) -> Set<String> {
        let wanted = Set(operationIds)
        var held = Set<String>()
        for text in texts {
            guard let ids = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else { continue }
            held.formUnion(ids.filter(wanted.contains))
        }
        return held
    }
}
