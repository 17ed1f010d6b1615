import Foundation
import FullStoryContract
import SegSyncVocabulary

/// The manifest's `api` block.
public struct APISettings: Sendable, Hashable {
    /// The special endpoint that starts the built-in emulator inside the segsync process.
    public static let emulatorEndpoint = APIEndpoint.emulator
    public static let defaultEndpoint = "https://api.fullstory.com"

    public var endpoint: String
    public var dialect: Dialect
    public var keyEnv: String
    public var rateLimit: RateLimit

    public init(endpoint: String = APISettings.defaultEndpoint, dialect: Dialect = .seed,
                keyEnv: String = "FULLSTORY_API_KEY", rateLimit: RateLimit = .init()) {
        self.endpoint = endpoint
        self.dialect = dialect
        self.keyEnv = keyEnv
        self.rateLimit = rateLimit
    }
}

/// The manifest's `state` block: where state lives and the run lock is taken.
public struct StateSettings: Sendable, Hashable {
    /// Which engine keeps the state.
    public enum Backend: String, Sendable, Hashable, CaseIterable {
        /// `.segsync/state.sqlite` beside the manifest.
        case sqlite
        /// A PostgreSQL database that several runners share.
        case postgres
    }

    public static let defaultURLEnv = "SEGSYNC_DATABASE_URL"
    public static let defaultWorkspace = "default"

    public var backend: Backend
    /// The environment variable holding the connection string (`postgres` only): the
    /// string itself, with its password, never goes in the manifest.
    public var urlEnv: String
    /// Names this manifest's state among others in the same database.
    public var workspace: String

    public init(backend: Backend = .sqlite, urlEnv: String = StateSettings.defaultURLEnv, workspace: String = StateSettings.defaultWorkspace) {
        self.backend = backend
        self.urlEnv = urlEnv
        self.workspace = workspace
    }
}

/// One declared export, with defaults already applied.
public struct ExportSpec: Sendable, Hashable {
    public var name: String
    public var segment: String
    public var type: ExportType
    public var format: ExportFormat
    public var window: WindowSpec
    public var timeZone: TimeZone
    /// The IANA name the manifest gave (`UTC` by default): sent to the API as it is.
    /// `timeZone.identifier` may differ (Linux's Foundation calls UTC `GMT`).
    public var timeZoneName: String
    /// Segment membership is evaluated over `[partition end - segmentWindow, partition end)`.
    public var segmentWindow: Span?
    /// Field selection (the `fullstory` dialect); empty means every field.
    public var fields: [String]
    /// Gunzip downloads before writing them.
    public var decompress: Bool
    /// Delete this export's recorded outputs that are no longer desired (rolled out of
    /// the window). Defaults to the manifest's top-level `prune`.
    public var prune: Bool
    /// Where the export is declared, for messages.
    public var location: SourceLocation

    public init(name: String, segment: String, type: ExportType, format: ExportFormat, window: WindowSpec,
                timeZone: TimeZone, timeZoneName: String? = nil, segmentWindow: Span? = nil, fields: [String] = [], decompress: Bool = false,
                prune: Bool = false, location: SourceLocation = .init(line: 0, column: 0)) {
        self.name = name
        self.segment = segment
        self.type = type
        self.format = format
        self.window = window
        self.timeZone = timeZone
        self.timeZoneName = timeZoneName ?? (timeZone.secondsFromGMT() == 0 && ["GMT", "UTC"].contains(timeZone.identifier) ? "UTC" : timeZone.identifier)
        self.segmentWindow = segmentWindow
        self.fields = fields
        self.decompress = decompress
        self.prune = prune
        self.location = location
    }

    /// The file extension outputs get: what is on disk, so `.gz` unless decompressed.
    public var fileExtension: String {
        decompress ? format.rawValue : "\(format.rawValue).gz"
    }

    /// The Gregorian calendar in the export's time zone: what `1d` means for it.
    public var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        return calendar
    }
}

/// A decoded, validated `segsync.yaml`.
public struct Manifest: Sendable, Hashable {
    public var version: Int
    public var api: APISettings
    public var state: StateSettings = .init()
    /// The output folder, relative to the manifest's folder, or `s3://bucket/prefix`.
    public var output: String
    /// Where outputs go when `output` names a bucket (with the `s3:` block's settings).
    public var bucket: BucketSettings?
    /// Delete recorded outputs of exports that are no longer declared.
    public var prune: Bool
    public var exports: [ExportSpec]
    /// SHA-256 of the manifest's bytes, recorded in saved plans.
    public var sha256: String
    /// The file it was read from, for messages (`segsync.yaml:12:5: …`).
    public var file: String = "segsync.yaml"
    /// What the decoder found worth saying that is not an error; commands print them.
    public var warnings: [Diagnostic] = []

    public init(version: Int = 1, api: APISettings = .init(), output: String = "exports", prune: Bool = false,
                exports: [ExportSpec], sha256: String = "") {
        self.version = version
        self.api = api
        self.output = output
        self.prune = prune
        self.exports = exports
        self.sha256 = sha256
    }

    /// The declared export called `name`, if any.
    public func export(named name: String) -> ExportSpec? {
        exports.first { $0.name == name }
    }
}

extension Manifest {
    /// This manifest with `api.endpoint` set to the endpoint a run really talks to, by the
    /// one rule (``APIEndpoint/effective(flag:environment:configured:)``): `flag`, else
    /// `FULLSTORY_API_URL`, else the manifest's own. Outputs record it as their data source,
    /// so files fetched from an emulator are never taken for production data.
    public func resolvingEndpoint(environment: [String: String], flag: String? = nil) throws -> Manifest {
        var resolved = self
        do {
            resolved.api.endpoint = try APIEndpoint.effective(flag: flag, environment: environment, configured: api.endpoint)
        } catch {
            throw SegSyncError(error.description)
        }
        return resolved
    }
}

extension Manifest {
    /// Warnings that depend on the instant planned for: a `start` after `now` desires
    /// nothing until then (a typo in the year, most likely).
    public func windowWarnings(now: Date) -> [Diagnostic] {
        exports.compactMap { export in
            guard case .start(let start) = export.window.extent, start > now else { return nil }
            return Diagnostic(.warning, file: file, at: export.location,
                              "export '\(export.name)' starts at \(Timestamp.format(start)), after now; it has no partitions until then")
        }
    }
}

/// `output: s3://bucket/prefix` with the manifest's `s3:` block: which bucket, where in
/// it, and how to reach the store. Credentials never come from the manifest.
public struct BucketSettings: Sendable, Hashable {
    public var bucket: String
    /// Below which outputs live: empty, or ending in `/` (`fullstory/`).
    public var prefix: String
    /// Else `AWS_REGION`, `AWS_DEFAULT_REGION`, or the profile's.
    public var region: String?
    /// Another S3-compatible store (`https://…`); nil for AWS.
    public var endpoint: String?
    /// `endpoint/bucket/key` instead of `bucket.endpoint/key` (MinIO, Ceph).
    public var pathStyle: Bool

    public init(bucket: String, prefix: String, region: String? = nil, endpoint: String? = nil, pathStyle: Bool = false) {
        self.bucket = bucket
        self.prefix = prefix
        self.region = region
        self.endpoint = endpoint
        self.pathStyle = pathStyle
    }

    /// `s3://bucket/prefix/`, as messages show it.
    public var url: String { "s3://\(bucket)/\(prefix)" }

    /// The bucket and prefix of `s3://bucket[/prefix]`, or why it is not one. The prefix
    /// is a plain path: no empty, `.` or `..` segment.
    public static func parse(_ text: String) -> Result<(bucket: String, prefix: String), SegSyncError> {
        guard text.hasPrefix("s3://") else { return .failure(SegSyncError("'\(text)' is not an s3:// URL")) }
        let rest = text.dropFirst(5)
        let bucket = String(rest.prefix { $0 != "/" })
        var prefix = String(rest.dropFirst(bucket.count).drop { $0 == "/" })
        while prefix.hasSuffix("/") { prefix.removeLast() }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.-")
        guard (3...63).contains(bucket.count), bucket.allSatisfy(allowed.contains),
              bucket.first.map({ $0.isLetter || $0.isNumber }) == true, bucket.last.map({ $0.isLetter || $0.isNumber }) == true,
              !bucket.contains("..")
        else {
            return .failure(SegSyncError("'\(bucket)' is not a bucket name: 3 to 63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit"))
        }
        if !prefix.isEmpty {
            let segments = prefix.split(separator: "/", omittingEmptySubsequences: false)
            guard !segments.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                return .failure(SegSyncError("the prefix '\(prefix)' must be a plain path: no empty, '.' or '..' parts"))
            }
            prefix += "/"
        }
        return .success((bucket, prefix))
    }
}
