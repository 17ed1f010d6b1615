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
}

/// A decoded, validated `segsync.yaml`.
public struct Manifest: Sendable, Hashable {
    public var version: Int
    public var api: APISettings
    public var state: StateSettings = .init()
    /// The output folder, relative to the manifest's folder.
    public var output: String
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
