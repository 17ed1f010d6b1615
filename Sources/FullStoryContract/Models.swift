import Foundation
import SegSyncVocabulary

/// A saved FullStory segment, as listed by `GET /segments/v1`.
public struct Segment: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    /// Email of the FullStory user who made it; absent for built-in segments.
    public var creator: String?
    /// When it was made; absent for built-in segments such as `everyone`.
    public var created: Date?
    /// Link to the segment in the FullStory app (production dialect only).
    public var url: String?

    public init(id: String, name: String, creator: String? = nil, created: Date? = nil, url: String? = nil) {
        self.id = id
        self.name = name
        self.creator = creator
        self.created = created
        self.url = url
    }
}

/// One page of segments and the token for the next page, if there is one.
public struct SegmentPage: Sendable, Hashable {
    public var segments: [Segment]
    public var nextPageToken: String?

    public init(segments: [Segment], nextPageToken: String?) {
        self.segments = segments
        self.nextPageToken = nextPageToken
    }
}

/// A half-open time interval `[start, end)`.
public struct TimeRange: Sendable, Hashable, Codable {
    public var start: Date
    public var end: Date

    public init(start: Date, end: Date) {
        self.start = start
        self.end = end
    }
}

/// Everything needed to ask for one segment export.
public struct ExportRequest: Sendable, Hashable {
    public var segmentID: String
    public var type: ExportType
    /// `nil` lets the server choose (JSON); the production dialect always sends one.
    public var format: ExportFormat?
    public var timeRange: TimeRange?
    public var segmentTimeRange: TimeRange?
    /// IANA time zone; production dialect only (the contract has no such field).
    public var timezone: String?
    /// Field selection, wildcards allowed (`user_*`); production dialect only.
    public var fields: [String]?

    public init(
        segmentID: String,
        type: ExportType,
        format: ExportFormat? = nil,
        timeRange: TimeRange? = nil,
        segmentTimeRange: TimeRange? = nil,
        timezone: String? = nil,
        fields: [String]? = nil
    ) {
        self.segmentID = segmentID
        self.type = type
        self.format = format
        self.timeRange = timeRange
        self.segmentTimeRange = segmentTimeRange
        self.timezone = timezone
        self.fields = fields
    }
}

/// The state of an asynchronous operation.
///
/// A state this client does not know is kept as `.unknown(raw)` and treated as still in
/// progress: the server may add states, and a run must not crash or give up because of one.
public enum OperationState: Sendable, Hashable, CustomStringConvertible {
    case pending
    case running
    case completed
    case failed
    case unknown(String)

    public init(rawValue: String) {
        switch rawValue.uppercased() {
        case "PENDING": self = .pending
        case "RUNNING": self = .running
        case "COMPLETED": self = .completed
        case "FAILED": self = .failed
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: String {
        switch self {
        case .pending: return "PENDING"
        case .running: return "RUNNING"
        case .completed: return "COMPLETED"
        case .failed: return "FAILED"
        case .unknown(let raw): return raw
        }
    }

    /// True until the operation is `COMPLETED` or `FAILED`.
    public var isInProgress: Bool {
        switch self {
        case .completed, .failed: return false
        case .pending, .running, .unknown: return true
        }
    }

    public var description: String { rawValue }
}

/// Where a finished export's file can be had.
///
/// The contract puts a download URL in the operation; production puts a `searchExportId`
/// that must be exchanged for a short-lived signed link (see
/// ``FullStoryClient/exportResults(searchExportID:)``).
public struct ExportResults: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    public var downloadURL: URL?
    public var searchExportID: String?
    public var expires: Date?

    public init(downloadURL: URL? = nil, searchExportID: String? = nil, expires: Date? = nil) {
        self.downloadURL = downloadURL
        self.searchExportID = searchExportID
        self.expires = expires
    }

    /// The download URL is redacted: printing an operation must not leak its signed link.
    public var description: String {
        var parts: [String] = []
        if let downloadURL { parts.append("downloadURL: \(redacted(downloadURL))") }
        if let searchExportID { parts.append("searchExportID: \(searchExportID)") }
        if let expires { parts.append("expires: \(Timestamp.format(expires))") }
        return "ExportResults(\(parts.joined(separator: ", ")))"
    }

    public var debugDescription: String { description }
}

/// An asynchronous operation (a segment export), as reported by `GET /operations/v1/{id}`.
public struct ExportOperation: Sendable, Hashable {
    public var id: String
    public var type: String?
    public var state: OperationState
    /// 0–100; may be missing, and production sends integers.
    public var estimatePctComplete: Double?
    public var createdAt: Date?
    public var finishedAt: Date?
    public var errorDetails: String?
    public var results: ExportResults?

    public init(
        id: String,
        type: String? = nil,
        state: OperationState,
        estimatePctComplete: Double? = nil,
        createdAt: Date? = nil,
        finishedAt: Date? = nil,
        errorDetails: String? = nil,
        results: ExportResults? = nil
    ) {
        self.id = id
        self.type = type
        self.state = state
        self.estimatePctComplete = estimatePctComplete
        self.createdAt = createdAt
        self.finishedAt = finishedAt
        self.errorDetails = errorDetails
        self.results = results
    }
}

/// A signed link to an export's file and when it stops working.
public struct DownloadLink: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    public var url: URL
    public var expires: Date?

    public init(url: URL, expires: Date? = nil) {
        self.url = url
        self.expires = expires
    }

    /// Redacted: the query string is the signature.
    public var description: String { redacted(url) }
    public var debugDescription: String { description }
}

/// What a finished download wrote: its size on disk and the SHA-256 of those bytes.
public struct DownloadResult: Sendable, Hashable {
    public var bytes: Int64
    /// Lower-case hex SHA-256 of the bytes written to disk (after gunzip, if asked).
    public var sha256: String
    /// When asked for: the SHA-256 of the content after gunzip (whether or not the file
    /// was written gunzipped), and its newline-terminated lines.
    public var contentSHA256: String?
    public var contentLines: Int64?

    public init(bytes: Int64, sha256: String, contentSHA256: String? = nil, contentLines: Int64? = nil) {
        self.bytes = bytes
        self.sha256 = sha256
        self.contentSHA256 = contentSHA256
        self.contentLines = contentLines
    }
}

/// One page of `GET /operations/v1?type=SEARCH_EXPORT` (production only), newest first.
/// A listed search export says only its id, state and times: not its segment or range.
public struct OperationPage: Sendable, Hashable {
    public var operations: [ExportOperation]
    /// Where the next page starts; nil on the last.
    public var nextPageToken: String?

    public init(operations: [ExportOperation], nextPageToken: String?) {
        self.operations = operations
        self.nextPageToken = nextPageToken
    }
}
