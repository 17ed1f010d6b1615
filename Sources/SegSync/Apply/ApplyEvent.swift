import Foundation
import SegSyncVocabulary

/// Something that happened to one partition during `apply`, as it happened. The CLI
/// renders events as aligned log lines, a moving progress display, or one JSON line each
/// (`apply --json-events`).
public struct ApplyEvent: Sendable, Equatable {
    /// What happened, with what each kind needs to be told.
    public enum Kind: Sendable, Equatable {
        /// The API accepted a new export.
        case created(operationId: String, type: ExportType, format: ExportFormat)
        /// A poll of a running operation: its state and the API's estimate, if any.
        case polled(operationId: String, state: String, percent: Double?)
        /// Bytes of a download arrived (`total` when the server announced a length).
        case downloading(bytes: Int64, total: Int64?)
        /// The file is in place, checked and recorded.
        case downloaded(path: String, bytes: Int64, sha256: String)
        /// The download link had expired; a fresh one is being fetched.
        case relinking
        /// `--max-wait` ran out while the operation ran; the next run resumes it.
        case waiting(operationId: String)
        /// The operation ended in failure; the partition may be exported again.
        case operationFailed(operationId: String, message: String)
        /// The API no longer knows the operation; the partition is exported again.
        case lost(operationId: String)
        /// The partition failed in this run.
        case failed(message: String)
        /// A recorded output that is no longer declared was deleted.
        case pruned(path: String)
        /// Prunes not done because the run had errors.
        case prunesSkipped(count: Int)
        /// A provisional partition's final export arrived: its content `changed` (the file
        /// was replaced) or not (the file was kept, now final). Sizes and lines of content
        /// (after gunzip; a CSV's header included) before and after.
        case finalized(path: String, changed: Bool, sha256: String, before: Finalization.Size, after: Finalization.Size)
        /// The export of a create whose answer was lost was found in the operations list,
        /// created `lag` seconds after the request was sent; it is followed from here.
        case adopted(operationId: String, lag: Double)
        /// No export could be adopted for a lost create (`reason` says why); another is made.
        case notAdopted(reason: String)
    }

    /// What a finalization compares.
    public enum Finalization {
        public struct Size: Sendable, Equatable {
            public var bytes: Int64
            public var lines: Int64?

            public init(bytes: Int64, lines: Int64?) {
                self.bytes = bytes
                self.lines = lines
            }

            /// `1250 lines, 1.3 MiB`.
            var text: String { (lines.map { "\($0) lines, " } ?? "") + ByteCount.format(bytes) }
        }
    }

    /// The partition concerned (`nil` for run-wide events).
    public var key: PartitionKey?
    public var label: String
    public var kind: Kind
    public var time: Date

    public init(key: PartitionKey?, label: String, kind: Kind, time: Date) {
        self.key = key
        self.label = label
        self.kind = kind
        self.time = time
    }

    /// The event's name in logs and JSON: `created`, `polled`, `downloaded`, ….
    public var name: String {
        switch kind {
        case .created: return "created"
        case .polled: return "polled"
        case .downloading: return "downloading"
        case .downloaded: return "downloaded"
        case .relinking: return "relinking"
        case .waiting: return "waiting"
        case .operationFailed: return "op-failed"
        case .lost: return "lost"
        case .failed: return "error"
        case .pruned: return "pruned"
        case .prunesSkipped: return "skipped"
        case .finalized: return "finalized"
        case .adopted: return "adopted"
        case .notAdopted: return "not-adopted"
        }
    }

    /// Events a log shows by default; the others (polls, download progress, relinks) are
    /// for the progress display, `--verbose` and `--json-events`.
    public var isMilestone: Bool {
        switch kind {
        case .polled, .downloading, .relinking: return false
        default: return true
        }
    }

    /// What follows the export and partition columns of a log line.
    public var detail: String {
        switch kind {
        case .created(let id, let type, let format):
            return "op \(Planner.short(id)) (\(type.rawValue) \(format.rawValue))"
        case .polled(let id, let state, let percent):
            return "op \(Planner.short(id)) \(state)" + (percent.map { " \(Int($0.rounded()))%" } ?? "")
        case .downloading(let bytes, let total):
            return ByteCount.format(bytes) + (total.map { " of " + ByteCount.format($0) } ?? "")
        case .downloaded(let path, let bytes, let sha256):
            return "\(path) (\(ByteCount.format(bytes)), sha256 \(sha256.prefix(12))…)"
        case .relinking:
            return "the download link expired; fetching a fresh one"
        case .waiting(let id):
            return "op \(Planner.short(id)) still running; the next run resumes it"
        case .operationFailed(let id, let message):
            return "op \(Planner.short(id)): \(message)"
        case .lost(let id):
            return "op \(Planner.short(id)) is unknown to the API; exporting again"
        case .failed(let message):
            return message
        case .pruned(let path):
            return path
        case .prunesSkipped(let count):
            return "\(count) prune\(count == 1 ? "" : "s"): this run had errors, and pruning never follows errors"
        case .finalized(let path, let changed, _, let before, let after):
            return changed
                ? "\(path) changed after its provisional export: \(before.text) → \(after.text); replaced"
                : "\(path) unchanged since its provisional export (\(after.text)); kept, now final"
        case .adopted(let id, let lag):
            return "op \(Planner.short(id)) (created \(Self.seconds(lag)) after the lost request)"
        case .notAdopted(let reason):
            return reason
        }
    }

    /// `0.4 s`, `12 s`: how long after its request an export was created.
    static func seconds(_ value: Double) -> String {
        abs(value) < 10 ? String(format: "%.1f s", value) : "\(Int(value.rounded())) s"
    }

    /// One line of `apply --json-events`.
    public struct Document: MachineDocument {
        public var event: String
        public var time: String
        public var export: String?
        public var partition: String?
        public var start: String?
        public var operationId: String?
        public var type: String?
        public var format: String?
        public var state: String?
        public var percent: Double?
        public var bytes: Int64?
        public var totalBytes: Int64?
        public var path: String?
        public var sha256: String?
        public var message: String?
        public var count: Int?
        /// A finalization: whether the content changed, and the size and lines before.
        public var changed: Bool?
        public var bytesBefore: Int64?
        public var lines: Int64?
        public var linesBefore: Int64?
        /// An adoption: seconds from the lost request to the export's creation.
        public var lagSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case event, time, export, partition, start, type, format, state, percent, bytes, path, sha256, message, count, changed, lines
            case operationId = "operation_id", totalBytes = "total_bytes", bytesBefore = "bytes_before", linesBefore = "lines_before"
            case lagSeconds = "lag_seconds"
        }
    }

    public var document: Document {
        var document = Document(event: name, time: Timestamp.format(time), export: key?.export,
                                partition: key == nil ? nil : label, start: key.map { Timestamp.format($0.start) })
        switch kind {
        case .created(let id, let type, let format):
            document.operationId = id
            document.type = type.rawValue
            document.format = format.rawValue
        case .polled(let id, let state, let percent):
            document.operationId = id
            document.state = state
            document.percent = percent
        case .downloading(let bytes, let total):
            document.bytes = bytes
            document.totalBytes = total
        case .downloaded(let path, let bytes, let sha256):
            document.path = path
            document.bytes = bytes
            document.sha256 = sha256
        case .relinking:
            break
        case .waiting(let id), .lost(let id):
            document.operationId = id
        case .operationFailed(let id, let message):
            document.operationId = id
            document.message = message
        case .failed(let message):
            document.message = message
        case .pruned(let path):
            document.path = path
        case .prunesSkipped(let count):
            document.count = count
        case .finalized(let path, let changed, let sha256, let before, let after):
            document.path = path
            document.changed = changed
            document.sha256 = sha256
            document.bytes = after.bytes
            document.bytesBefore = before.bytes
            document.lines = after.lines
            document.linesBefore = before.lines
        case .adopted(let id, let lag):
            document.operationId = id
            document.lagSeconds = (lag * 1000).rounded() / 1000
        case .notAdopted(let reason):
            document.message = reason
        }
        return document
    }
}

/// Byte counts for people: `812 B`, `12.4 KiB`, `317.0 MiB`.
public enum ByteCount {
    /// Below 1 KiB in bytes, above in binary units with one decimal.
    public static func format(_ bytes: Int64) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        let units = ["KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return String(format: "%.1f", value) + " " + units[unit]
    }
}
