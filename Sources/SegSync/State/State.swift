import Foundation
import SegSyncVocabulary

/// What segsync knows about every partition it has touched, as read from a
/// ``StateStore`` in one consistent snapshot.
///
/// Like `terraform.tfstate`: `lineage` is fixed when the state is born and `serial` goes
/// up on every committed change, so a saved plan can tell that the state moved under it.
/// `segsync state pull` prints it as JSON (`format_version` 1); `state push` reads that
/// back, and also reads the `state.json` of earlier builds (`version` 1).
public struct State: Codable, Sendable, Equatable {
    public static let currentVersion = 1

    public var version: Int
    public var lineage: String
    public var serial: Int
    /// Keyed by ``PartitionKey`` description: `export@2026-11-27T13:00:00Z`.
    public var partitions: [String: PartitionRecord]

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

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", version, lineage, serial, partitions
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        // `version` is what the state.json of earlier builds called it.
        version = try container.decodeIfPresent(Int.self, forKey: .formatVersion) ?? container.decode(Int.self, forKey: .version)
        lineage = try container.decode(String.self, forKey: .lineage)
        serial = try container.decode(Int.self, forKey: .serial)
        partitions = try container.decode([String: PartitionRecord].self, forKey: .partitions)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(version, forKey: .formatVersion)
        try container.encode(lineage, forKey: .lineage)
        try container.encode(serial, forKey: .serial)
        try container.encode(partitions, forKey: .partitions)
    }
}

/// Where a partition is in its life: `creating` → `requested` → `running` → `completed` →
/// `downloaded`, or `failed`.
public enum Phase: String, Codable, Sendable, CaseIterable {
    /// A create was sent (its ``CreateIntent`` committed first) and its answer never
    /// recorded: an export may exist on the server that no record claims.
    case creating
    /// The API accepted the export and returned an operation id; nothing seen since.
    case requested
    case running
    /// The operation finished; the file is ready to download.
    case completed
    case downloaded
    case failed
}

/// The export settings a partition was made with, kept so a plan can say what changed
/// (``ExportParameters/settings`` lists them, and what each is called).
public struct ExportParameters: Codable, Sendable, Hashable {
    public var segment: String
    public var type: ExportType
    public var format: ExportFormat
    public var timezone: String
    public var fields: [String]
    public var dialect: Dialect
    public var segmentWindow: String?
    public var decompress: Bool
    public var endpoint: String?

    public init(_ export: ExportSpec, dialect: Dialect, endpoint: String? = nil) {
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
    /// The object store's identity of the object (its ETag) when the output is in a
    /// bucket: a replaced object is seen by its identity, without reading it.
    public var identity: String?
    /// When the export these bytes came from was created, by the run's clock (`--now`):
    /// before its partition's `end + final`, the output is provisional. Nil for outputs
    /// recorded before segsync kept it: taken as final.
    public var exportedAt: Date?
    /// The SHA-256 of the content (after gunzip, so two gzip encodings of the same rows
    /// agree), kept for provisional outputs: the final export replaces the file only when
    /// its content differs.
    public var contentSHA256: String?
    /// Newline-terminated lines of the content, kept with ``contentSHA256``: what a
    /// finalization reports as rows before and after.
    public var contentLines: Int64?

    public init(path: String, bytes: Int64, sha256: String, modified: Double? = nil, identity: String? = nil,
                exportedAt: Date? = nil, contentSHA256: String? = nil, contentLines: Int64? = nil) {
        self.path = path
        self.bytes = bytes
        self.sha256 = sha256
        self.modified = modified
        self.identity = identity
        self.exportedAt = exportedAt
        self.contentSHA256 = contentSHA256
        self.contentLines = contentLines
    }
}

/// What segsync commits before it sends a create: that this partition is about to be
/// exported, and when. The answer's operation id replaces it; one still there at the next
/// run means a create may have made an export whose id was lost, which that run looks for
/// in the API's operations list (``Adoption``) before creating another.
public struct CreateIntent: Codable, Sendable, Equatable {
    /// When the request was sent, by this machine's clock (not `--now`: it is compared
    /// with the server's `createdAt`).
    public var sentAt: Date
    /// When a success segsync could not read arrived (a 2xx without a readable id): the
    /// export was made before it. Nil when none came (a reset, a timeout, a 5xx, a
    /// SIGKILL): then up to ``timeout`` after ``sentAt``.
    public var answeredAt: Date?
    /// The client's request timeout, in seconds.
    public var timeout: Double
    /// The server's clock minus this machine's, in seconds, as measured before sending.
    public var clockOffset: Double?

    public init(sentAt: Date, answeredAt: Date? = nil, timeout: Double, clockOffset: Double? = nil) {
        self.sentAt = sentAt
        self.answeredAt = answeredAt
        self.timeout = timeout
        self.clockOffset = clockOffset
    }

    /// The latest an export made by this create can have been created, by this machine's clock.
    /// Never before ``sentAt``: a clock stepped back between send and answer, or a
    /// negative timeout in a pushed state file, must not make the window a negative range.
    public var windowEnd: Date { max(sentAt, answeredAt ?? sentAt.addingTimeInterval(max(0, timeout))) }
}

/// How segsync learned a partition's operation id.
public enum OperationSource: String, Codable, Sendable {
    /// From the create's answer.
    case created
    /// From the API's operations list, after the create's answer was lost (``Adoption``).
    case adopted
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
    /// When the operation in ``operationId`` was created, by the run's clock (`--now`):
    /// it becomes the output's ``OutputRecord/exportedAt`` once downloaded.
    public var requestedAt: Date?
    /// A create sent whose answer is not recorded (phase ``Phase/creating``).
    public var intent: CreateIntent?
    /// How ``operationId`` was learned; nil for ids recorded before segsync kept it.
    public var operationSource: OperationSource?
    /// Exports on FullStory this partition's lost create may have made, given up when it
    /// exported again because another open window held them too (an ambiguous match).
    /// Another partition's, or another workspace's, they may be: no partition ever adopts
    /// them (``StateStore/claimed(_:)`` counts them). Nil when there are none.
    public var disowned: [String]?
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

