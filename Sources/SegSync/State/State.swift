#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FileIO
import Foundation

/// `.segsync/state.json`: what segsync knows about every partition it has touched.
///
/// Like `terraform.tfstate`: `lineage` is fixed when the state is born and `serial` goes
/// up on every write, so a saved plan can tell that the state moved under it.
public struct State: Codable, Sendable, Equatable {
    public static let currentVersion = 1

    public var version: Int
    public var lineage: String
    public var serial: Int
    /// Keyed by ``PartitionKey`` description: `export@2026-11-27T13:00:00Z`.
    public var partitions: [String: PartitionRecord]
    /// Names the journal generation this snapshot starts: only journal lines written
    /// after it carry it. Lines left from before (a crash between writing the snapshot
    /// and emptying the journal) are already folded in and are not replayed again.
    public var journalEpoch: String?

    public init(lineage: String = UUID().uuidString.lowercased(), serial: Int = 0, partitions: [String: PartitionRecord] = [:]) {
        self.version = Self.currentVersion
        self.lineage = lineage
        self.serial = serial
        self.partitions = partitions
    }

    public subscript(key: PartitionKey) -> PartitionRecord? {
        get { partitions[key.description] }
        set { partitions[key.description] = newValue }
    }
}

/// Where a partition is in its life: `requested` → `running` → `completed` → `downloaded`,
/// or `failed`.
public enum Phase: String, Codable, Sendable, CaseIterable {
    /// The API accepted the export and returned an operation id; nothing seen since.
    case requested
    case running
    /// The operation finished; the file is ready to download.
    case completed
    case downloaded
    case failed
}

/// The export settings a partition was made with, kept so a plan can say what changed.
public struct ExportParameters: Codable, Sendable, Equatable {
    public var segment: String
    public var type: ExportType
    public var format: ExportFormat
    public var timezone: String
    public var fields: [String]
    public var dialect: APIDialect
    public var segmentWindow: String?
    public var decompress: Bool
    public var endpoint: String?

    public init(_ export: ExportSpec, dialect: APIDialect, endpoint: String? = nil) {
        segment = export.segment
        type = export.type
        format = export.format
        timezone = export.timeZone.identifier
        fields = export.fields
        self.dialect = dialect
        segmentWindow = export.segmentWindow?.description
        decompress = export.decompress
        self.endpoint = endpoint
    }

    /// The parameters of `export` under `manifest`'s API settings.
    public init(_ export: ExportSpec, in manifest: Manifest) {
        self.init(export, dialect: manifest.api.dialect, endpoint: manifest.api.endpoint)
    }

    /// "format changed json → csv; segment changed a → b", or nil when nothing differs.
    public func changes(to new: ExportParameters) -> String? {
        var changes: [String] = []
        func compare(_ name: String, _ old: String, _ new: String) {
            if old != new { changes.append("\(name) changed \(old.isEmpty ? "(none)" : old) → \(new.isEmpty ? "(none)" : new)") }
        }
        compare("segment", segment, new.segment)
        compare("type", type.rawValue, new.type.rawValue)
        compare("format", format.rawValue, new.format.rawValue)
        compare("timezone", timezone, new.timezone)
        compare("fields", fields.joined(separator: ","), new.fields.joined(separator: ","))
        compare("dialect", dialect.rawValue, new.dialect.rawValue)
        compare("segmentWindow", segmentWindow ?? "", new.segmentWindow ?? "")
        compare("decompress", String(decompress), String(new.decompress))
        compare("data source", endpoint ?? "", new.endpoint ?? "")
        return changes.isEmpty ? nil : changes.joined(separator: "; ")
    }
}

/// A file segsync wrote, as recorded in state and lockfile.
public struct OutputRecord: Codable, Sendable, Equatable {
    /// Relative to the output folder.
    public var path: String
    public var bytes: Int64
    public var sha256: String
    /// Modification time when written (seconds since 1970), so a plan can skip hashing
    /// files nobody touched. Not in the lockfile: it differs between machines.
    public var modified: Double?

    public init(path: String, bytes: Int64, sha256: String, modified: Double? = nil) {
        self.path = path
        self.bytes = bytes
        self.sha256 = sha256
        self.modified = modified
    }
}

/// One partition's record in state.
public struct PartitionRecord: Codable, Sendable, Equatable {
    public var export: String
    public var start: Date
    public var end: Date
    public var label: String
    public var fingerprint: String
    public var parameters: ExportParameters
    public var phase: Phase
    public var operationId: String?
    /// The operation's state as the API last reported it (`RUNNING`, …).
    public var operationState: String?
    public var progress: Double?
    /// How many exports segsync has created for this partition.
    public var attempts: Int
    public var lastError: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var output: OutputRecord?

    public init(partition: Partition, parameters: ExportParameters, phase: Phase, now: Date) {
        export = partition.export
        start = partition.start
        end = partition.end
        label = partition.label
        fingerprint = partition.fingerprint
        self.parameters = parameters
        self.phase = phase
        attempts = 0
        createdAt = now
        updatedAt = now
    }

    public var key: PartitionKey { PartitionKey(export: export, start: start) }
}

/// Reads and writes `.segsync/state.json` and its write-ahead journal.
///
/// `state.json` is the whole state, rewritten atomically. Between rewrites, changes are
/// appended to `state.journal` (one JSON line per changed partition), so recording an
/// operation id costs one small fsynced append instead of rewriting a file that grows
/// with every partition. Reading replays the journal over `state.json`; a rewrite folds
/// it in and empties it.
public struct StateStore: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public var journalPath: String {
        (path as NSString).deletingPathExtension + ".journal"
    }

    /// Whether changes wait in the journal to be folded into `state.json`.
    public var hasJournal: Bool {
        var info = stat()
        return stat(journalPath, &info) == 0 && info.st_size > 0
    }

    /// One journal line: a partition's whole record, or its removal.
    struct JournalLine: Codable {
        var key: String
        var record: PartitionRecord?
        /// The ``State/journalEpoch`` of the snapshot the line was appended after.
        var epoch: String?
    }

    /// The state on disk, or an empty one when there is none yet (its lineage is set when
    /// it is first saved, so plans made before then agree). A file that exists but cannot
    /// be read is an error: it is never silently replaced.
    public func load() throws -> State {
        var state = try loadSnapshot()
        try replayJournal(into: &state)
        return state
    }

    private func loadSnapshot() throws -> State {
        guard FileManager.default.fileExists(atPath: path) else { return State(lineage: "") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SegSyncError("cannot read the state file \(path); check its permissions. segsync will not overwrite it.")
        }
        do {
            let state = try Self.decoder.decode(State.self, from: data)
            guard state.version <= State.currentVersion else {
                throw SegSyncError("the state file \(path) has version \(state.version), newer than this segsync understands (\(State.currentVersion)); upgrade segsync.")
            }
            return state
        } catch let error as SegSyncError {
            throw error
        } catch {
            throw SegSyncError("the state file \(path) is not valid segsync state (\(Self.describe(error))); segsync will not overwrite it. Move it aside to start afresh: outputs are re-adopted from segsync.lock.")
        }
    }

    /// Applies the journal's changes; each counts as a change of the serial. A last line
    /// cut short by a crash is ignored; damage anywhere else is an error.
    private func replayJournal(into state: inout State) throws {
        guard let data = FileManager.default.contents(atPath: journalPath), !data.isEmpty else { return }
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let decoder = Self.decoder
        for (index, line) in lines.enumerated() where !line.isEmpty {
            do {
                let entry = try decoder.decode(JournalLine.self, from: Data(line))
                guard entry.epoch == state.journalEpoch else { continue }  // folded in already
                state.partitions[entry.key] = entry.record
                state.serial += 1
            } catch {
                if index == lines.count - 1 { break }  // torn final write
                throw SegSyncError("the state journal \(journalPath) is damaged at line \(index + 1) (\(Self.describe(error))); segsync will not overwrite it.")
            }
        }
    }

    /// Appends changes to the journal; `sync` makes them durable before returning.
    /// Appends changes to the journal, after the snapshot of `epoch`; `sync` makes them
    /// durable before returning.
    public func append(_ changes: [(key: String, record: PartitionRecord?)], epoch: String?, sync: Bool) throws {
        guard !changes.isEmpty else { return }
        var data = Data()
        for change in changes {
            data.append(try Self.lineEncoder.encode(JournalLine(key: change.key, record: change.record, epoch: epoch)))
            data.append(UInt8(ascii: "\n"))
        }
        let fd = open(journalPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SegSyncError("cannot write the state journal \(journalPath): \(errnoText()).") }
        defer { close(fd) }
        do {
            try data.withUnsafeBytes { bytes in try FileIO.writeAll(fd, bytes) }
        } catch {
            throw SegSyncError("cannot write the state journal \(journalPath): \(error).")
        }
        if sync {
            do { try FileIO.sync(fd) } catch { throw SegSyncError("cannot flush the state journal \(journalPath) to disk: \(error).") }
        }
    }

    /// Writes `state` atomically under a new journal epoch, bumping its serial, then
    /// empties the journal it folded in (durably; lines that survive a crash in between
    /// carry the old epoch and are skipped).
    public func save(_ state: inout State) throws {
        if state.lineage.isEmpty { state.lineage = UUID().uuidString.lowercased() }
        state.serial += 1
        state.journalEpoch = UUID().uuidString.lowercased()
        try AtomicFile.write(try Self.encoder.encode(state), to: path)
        guard FileManager.default.fileExists(atPath: journalPath) else { return }
        let fd = open(journalPath, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw SegSyncError("cannot empty the state journal \(journalPath): \(errnoText()).") }
        defer { close(fd) }
        do { try FileIO.sync(fd) } catch { throw SegSyncError("cannot flush the state journal \(journalPath) to disk: \(error).") }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Timestamp.format(date))
        }
        return encoder
    }()

    static let lineEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = StateStore.encoder.dateEncodingStrategy
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = Timestamp.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not an RFC 3339 time")
            }
            return date
        }
        return decoder
    }()

    /// A one-line reason from a DecodingError, naming the field path instead of dumping it.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "unreadable JSON" }
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return path.isEmpty ? "the top level" : String(path.drop(while: { $0 == "." }))
        }
        switch error {
        case .dataCorrupted(let context): return context.codingPath.isEmpty ? "not JSON" : "bad value at \(path(context))"
        case .keyNotFound(let key, let context): return "missing '\(key.stringValue)' at \(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "wrong type at \(path(context))"
        @unknown default: return "unreadable JSON"
        }
    }
}
