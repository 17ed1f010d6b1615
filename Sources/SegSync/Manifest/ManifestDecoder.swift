import Foundation
import FullStoryContract
import SegSyncVocabulary

struct WindowFields {
    var every: Span?
    var last: Span?
    var start: (text: String, location: SourceLocation)?
    var settle: Span?
    var final: Span?
    /// Where `final` was written, for messages about it.
    var finalLocation: SourceLocation?
    var location: SourceLocation?
    /// Where `last` was written, for messages about it.
    var lastLocation: SourceLocation?

    /// Later fields win; `last` and `start` replace each other as the extent.
    func overlaid(by other: WindowFields?) -> WindowFields {
        guard let other else { return self }
        var merged = self
        if let every = other.every { merged.every = every }
        if let settle = other.settle { merged.settle = settle }
        if let final = other.final {
            merged.final = final
            merged.finalLocation = other.finalLocation
        }
        if other.last != nil || other.start != nil {
            merged.last = other.last
            merged.lastLocation = other.lastLocation
            merged.start = other.start
        }
        merged.location = other.location ?? location
        return merged
    }
}

struct ExportFields {
    var name: String?
    var segment: String?
    var type: ExportType?
    var format: ExportFormat?
    var window: WindowFields?
    var timeZone: TimeZone?
    /// The zone as written (`UTC`): what is sent to the API. Linux's Foundation names UTC `GMT`.
    var timeZoneName: String?
    var segmentWindow: Span?
    var fields: [String]?
    var decompress: Bool?
    var prune: Bool?
}

struct ManifestDecoder {
    let file: String
    var diagnostics: [Diagnostic] = []

    static let topKeys = ["version", "api", "state", "output", "s3", "defaults", "exports", "prune"]
    static let s3Keys = ["region", "endpoint", "pathStyle"]
    static let stateKeys = ["backend", "urlEnv", "workspace"]
    static let apiKeys = ["endpoint", "dialect", "keyEnv", "rateLimit"]
    static let rateLimitKeys = ["perSecond", "burst"]
    static let exportKeys = ["name", "segment", "type", "format", "window", "timezone", "segmentWindow", "fields", "decompress", "prune"]
    static let defaultsKeys = ["type", "format", "window", "timezone", "segmentWindow", "fields", "decompress", "prune"]
    static let windowKeys = ["every", "last", "start", "settle", "final"]
    /// Field names seen in FullStory's exports (LIVE-API-NOTES.md), for typo warnings.
    static let knownFieldNames: [String] = [
        "IndvId", "UserId", "SessionId", "PageId", "UserCreated", "UserAppKey", "UserDisplayName", "UserEmail",
        "EventStart", "EventType", "EventSubType", "EventCustomName", "EventTargetText", "EventTargetSelector",
        "EventPageOffset", "EventSessionOffset", "EventModFrustrated", "EventModDead", "EventModError",
        "SessionStart", "PageStart", "PageDuration", "PageActiveDuration", "PageUrl", "PageRefererUrl", "PageIp",
        "PageLatLong", "PageUserAgent", "PageBrowser", "PageDevice", "PagePlatform", "PageOperatingSystem",
        "PageScreenWidth", "PageScreenHeight", "PageNumErrors", "PageMaxScrollDepthPercent", "LoadDomContentTime",
        "LoadFirstPaintTime",
    ]

    /// Keys that can only mean someone is about to commit a secret.
    static let secretKeys: Set<String> = ["key", "apikey", "api_key", "api-key", "token", "secret", "password", "apitoken", "api_token"]

    init(file: String) {
        self.file = file
    }

    mutating func error(_ location: SourceLocation?, _ message: String) {
        diagnostics.append(Diagnostic(.error, file: file, at: location, message))
    }

    /// Something that works but is probably not what the author meant.
    mutating func warning(_ location: SourceLocation?, _ message: String) {
        diagnostics.append(Diagnostic(.warning, file: file, at: location, message))
    }

    var errorCount: Int { diagnostics.reduce(0) { $0 + ($1.severity == .error ? 1 : 0) } }

    // MARK: Manifest

    mutating func manifest(_ root: YAMLNode, sha256: String) -> Manifest? {
        guard let top = entries(root, allowed: Self.topKeys, what: "the manifest") else { return nil }
        var version: Int?
        if let node = top["version"]?.value {
            // `version: "1"` (quoted, as some tools write it) means the same.
            if node.scalar == "1" {
                version = 1
            } else {
                error(node.location, "unsupported manifest version \(node.kindDescription); this segsync reads version 1")
            }
        } else {
            error(root.location, "the manifest has no 'version'; add 'version: 1' at the top")
        }
        let api = top["api"].map { apiSettings($0.value) } ?? APISettings()
        var output = "exports"
        var bucket: BucketSettings?
        if let node = top["output"]?.value, let text = string(node, "output") {
            if text.lowercased().hasPrefix("s3://") {
                switch BucketSettings.parse(text) {
                case .success(let parsed):
                    output = text
                    bucket = BucketSettings(bucket: parsed.bucket, prefix: parsed.prefix)
                case .failure(let failure):
                    error(node.location, "output: \(failure.message)")
                }
            } else if text.contains("://") {
                error(node.location, "output must be a folder or an s3:// URL, found '\(text)'")
            } else if text.isEmpty || text.split(separator: "/").contains("..") {
                error(node.location, "output must name a folder without '..' components, found '\(text)'")
            } else {
                output = text
            }
        }
        let prune = top["prune"].flatMap { bool($0.value, "prune") } ?? false
        let defaults = top["defaults"].map { exportFields($0.value, allowed: Self.defaultsKeys, what: "defaults") } ?? ExportFields()
        var exports: [ExportSpec] = []
        if let node = top["exports"]?.value {
            if case .sequence(let items) = node.kind {
                var seen: [String: SourceLocation] = [:]
                for item in items {
                    // Names are checked on the raw nodes so a duplicate is reported even
                    // when either export has other mistakes.
                    if case .mapping(let pairs) = item.kind,
                       let nameNode = pairs.first(where: { $0.key.scalar == "name" })?.value, let name = nameNode.scalar {
                        if let first = seen[name] {
                            error(nameNode.location, "duplicate export name '\(name)' (first declared at \(first))")
                            // Its other mistakes are worth hearing about in the same run.
                            _ = export(item, defaults: defaults, api: api, prune: prune)
                            continue
                        }
                        seen[name] = nameNode.location
                    }
                    if let spec = export(item, defaults: defaults, api: api, prune: prune) { exports.append(spec) }
                }
                if items.isEmpty { error(node.location, "'exports' is empty; declare at least one export") }
            } else if !node.isNull {
                error(node.location, "expected a list of exports for 'exports', found \(node.kindDescription)")
            } else {
                error(node.location, "'exports' is empty; declare at least one export")
            }
        } else {
            error(root.location, "the manifest has no 'exports'; declare at least one export")
        }
        let state = top["state"].map { stateSettings($0.value) } ?? StateSettings()
        if let node = top["s3"] {
            if bucket != nil {
                bucketSettings(node.value, into: &bucket!)
            } else {
                warning(node.key.location, "the s3 block is only read when output is an s3:// URL; this manifest's output is a folder")
            }
        }
        guard let version else { return nil }
        var manifest = Manifest(version: version, api: api, output: output, prune: prune, exports: exports, sha256: sha256)
        manifest.state = state
        manifest.bucket = bucket
        return manifest
    }

    mutating func apiSettings(_ node: YAMLNode) -> APISettings {
        var api = APISettings()
        guard let fields = entries(node, allowed: Self.apiKeys, what: "'api'") else { return api }
        if let node = fields["endpoint"]?.value, let text = string(node, "endpoint") {
            if let problem = Self.endpointProblem(text) {
                error(node.location, problem)
            } else {
                api.endpoint = text
            }
        }
        if let node = fields["dialect"]?.value, let dialect = choice(node, "dialect", Dialect.self) {
            api.dialect = dialect
        }
        if let node = fields["keyEnv"]?.value, let text = string(node, "keyEnv") {
            if NameRules.isVariable(text) {
                api.keyEnv = text
            } else {
                error(node.location, "keyEnv must name an environment variable (letters, digits and '_', like FULLSTORY_API_KEY); the key itself never goes in the manifest")
            }
        }
        if let node = fields["rateLimit"]?.value, let limits = entries(node, allowed: Self.rateLimitKeys, what: "'rateLimit'") {
            if let value = limits["perSecond"].flatMap({ number($0.value, "perSecond", range: 0.01...1000) }) {
                api.rateLimit.perSecond = value
            }
            if let node = limits["burst"]?.value, let value = number(node, "burst", range: 1...1000) {
                if value == value.rounded() { api.rateLimit.burst = Int(value) } else { error(node.location, "burst must be a whole number") }
            }
        }
        return api
    }

    /// The `s3:` block: region, endpoint, pathStyle. Keys and secrets are refused here:
    /// they come from the standard AWS places only.
    mutating func bucketSettings(_ node: YAMLNode, into settings: inout BucketSettings) {
        let secrets: Set<String> = ["accessKeyId", "secretAccessKey", "sessionToken", "credentials", "profile"]
        var clean = node
        if case .mapping(let pairs) = node.kind {
            for pair in pairs where secrets.contains(pair.key.scalar ?? "") {
                error(pair.key.location, "s3 has no '\(pair.key.scalar ?? "")': credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, a web identity), never the manifest")
            }
            clean = YAMLNode(kind: .mapping(pairs.filter { !secrets.contains($0.key.scalar ?? "") }), location: node.location)
        }
        guard let fields = entries(clean, allowed: Self.s3Keys, what: "'s3'") else { return }
        if let node = fields["region"]?.value, let text = string(node, "region") {
            if !text.isEmpty, text.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) {
                settings.region = text
            } else {
                error(node.location, "region must be a region name like eu-west-1, found '\(text)'")
            }
        }
        if let node = fields["endpoint"]?.value, let text = string(node, "endpoint") {
            if let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty,
               scheme == "https" || (scheme == "http" && APIEndpoint.isLoopback(host)), url.query == nil, url.user == nil {
                settings.endpoint = text
            } else {
                error(node.location, "endpoint must be an https:// URL of an S3-compatible store (http:// only on this machine, 127.0.0.1 or localhost), found '\(text)'")
            }
        }
        if let node = fields["pathStyle"]?.value, let value = bool(node, "pathStyle") {
            settings.pathStyle = value
        }
    }

    mutating func stateSettings(_ node: YAMLNode) -> StateSettings {
        var settings = StateSettings()
        guard case .mapping(let pairs) = node.kind else {
            _ = entries(node, allowed: Self.stateKeys, what: "'state'")
            return settings
        }
        // A connection string written into the manifest (under any key) would be
        // committed with its password: refused, pointing at urlEnv.
        for pair in pairs {
            if let text = pair.value.scalar, Self.looksLikeDatabaseURL(text) {
                error(pair.value.location, "the manifest must not contain a database URL ('\(pair.key.scalar ?? "?")'); put it in the environment variable named by state.urlEnv (\(StateSettings.defaultURLEnv) by default)")
            } else if pair.key.scalar == "url" {
                error(pair.key.location, "state has no 'url': the connection string only ever comes from the environment; write 'urlEnv: \(StateSettings.defaultURLEnv)' and set that variable")
            }
        }
        let clean = YAMLNode(kind: .mapping(pairs.filter { pair in
            !(pair.value.scalar.map(Self.looksLikeDatabaseURL) ?? false) && pair.key.scalar != "url"
        }), location: node.location)
        guard let fields = entries(clean, allowed: Self.stateKeys, what: "'state'") else { return settings }
        if let node = fields["backend"]?.value, let backend = choice(node, "backend", StateSettings.Backend.self) {
            settings.backend = backend
        }
        if let node = fields["urlEnv"]?.value, let text = string(node, "urlEnv") {
            if NameRules.isVariable(text) {
                settings.urlEnv = text
            } else {
                error(node.location, "urlEnv must name an environment variable (letters, digits and '_', like \(StateSettings.defaultURLEnv)); the connection string itself never goes in the manifest")
            }
        }
        if let node = fields["workspace"]?.value, let text = string(node, "workspace") {
            if NameRules.isWorkspace(text) {
                settings.workspace = text
            } else {
                error(node.location, "workspace must be a name of letters, digits, '.', '_' and '-' (at most 63), like 'analytics'; found '\(text)'")
            }
        }
        if settings.backend == .sqlite, let node = fields["urlEnv"] {
            warning(node.key.location, "urlEnv is only read by the postgres backend; this manifest's state is SQLite (add 'backend: postgres' to share it)")
        }
        return settings
    }

    /// `postgres://…`, `postgresql://…`: a connection string, which may carry a password.
    static func looksLikeDatabaseURL(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://") || (lower.contains("://") && lower.contains("@"))
    }

    /// Why an endpoint is unacceptable, or nil: ``APIEndpoint``'s rules, plus `emulator`.
    static func endpointProblem(_ text: String) -> String? {
        if text == APISettings.emulatorEndpoint { return nil }
        return APIEndpoint.problem(with: text).map { "endpoint '\(redacted(text))' \($0); or write 'emulator' for the built-in one" }
    }

    mutating func window(_ node: YAMLNode) -> WindowFields? {
        guard let fields = entries(node, allowed: Self.windowKeys, what: "'window'") else { return nil }
        var window = WindowFields(location: node.location)
        window.every = fields["every"].flatMap { span($0.value, "every") }
        window.last = fields["last"].flatMap { span($0.value, "last") }
        window.lastLocation = fields["last"]?.value.location
        window.settle = fields["settle"].flatMap { span($0.value, "settle", allowZero: true) }
        window.final = fields["final"].flatMap { span($0.value, "final", allowZero: true) }
        window.finalLocation = fields["final"]?.value.location
        if let node = fields["start"]?.value, let text = string(node, "start") {
            window.start = (text, node.location)
        }
        if let every = window.every, Cadence(every) == nil, let node = fields["every"]?.value {
            error(node.location, "every: \(every) cannot be aligned to calendar time; use a length that divides a day (like 15m, 1h or 6h), 1d or 1w")
            window.every = nil
        }
        if let lastPair = fields["last"], fields["start"] != nil {
            error(lastPair.key.location, "'last' and 'start' cannot be used together; 'last' keeps a rolling window, 'start' backfills from a fixed date")
        }
        return window
    }

    mutating func exportFields(_ node: YAMLNode, allowed: [String], what: String) -> ExportFields {
        var result = ExportFields()
        guard let fields = entries(node, allowed: allowed, what: what) else { return result }
        result.name = fields["name"].flatMap { string($0.value, "name") }
        result.segment = fields["segment"].flatMap { string($0.value, "segment") }
        result.type = fields["type"].flatMap { choice($0.value, "type", ExportType.self) }
        result.format = fields["format"].flatMap { choice($0.value, "format", ExportFormat.self) }
        result.window = fields["window"].flatMap { window($0.value) }
        result.timeZone = fields["timezone"].flatMap { timeZone($0.value) }
        if result.timeZone != nil { result.timeZoneName = fields["timezone"].flatMap { $0.value.scalar } }
        result.segmentWindow = fields["segmentWindow"].flatMap { span($0.value, "segmentWindow") }
        result.decompress = fields["decompress"].flatMap { bool($0.value, "decompress") }
        result.prune = fields["prune"].flatMap { bool($0.value, "prune") }
        if let node = fields["fields"]?.value {
            if case .sequence(let items) = node.kind {
                result.fields = items.compactMap { item in
                    guard let name = string(item, "fields") else { return nil }
                    // Wildcards (`user_*`) and names FullStory may add are fine; a near miss of
                    // a known name is most likely a typo the API would silently ignore.
                    if !name.contains("*"), !Self.knownFieldNames.contains(name),
                       let near = nearest(to: name, in: Self.knownFieldNames) {
                        warning(item.location, "'\(name)' is not a field FullStory is known to export (did you mean '\(near)'?); the export would leave it out")
                    }
                    return name
                }
            } else {
                error(node.location, "expected a list of field names for 'fields', found \(node.kindDescription)")
            }
        }
        return result
    }

    mutating func export(_ node: YAMLNode, defaults: ExportFields, api: APISettings, prune: Bool) -> ExportSpec? {
        let errorsBefore = errorCount
        let fields = exportFields(node, allowed: Self.exportKeys, what: "an export")
        guard case .mapping(let pairs) = node.kind else { return nil }
        let location = pairs.first?.key.location ?? node.location
        func has(_ key: String) -> YAMLNode.Pair? { pairs.first { $0.key.scalar == key } }

        let name = fields.name
        if let name, !NameRules.isExport(name) {
            error(has("name")?.value.location, "export name '\(name)' must be 1–100 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
        } else if name == nil, has("name") == nil {
            error(location, "this export has no 'name'")
        }
        let label = name.map { "export '\($0)'" } ?? "this export"
        if fields.segment == nil, has("segment") == nil { error(location, "\(label) has no 'segment'") }
        let type = fields.type ?? defaults.type
        if type == nil, has("type") == nil { error(location, "\(label) has no 'type'; expected one of: individuals, events") }
        let format = fields.format ?? defaults.format ?? .json
        if format == .ndjson, api.dialect != .fullstory {
            error(has("format")?.value.location ?? location, "format 'ndjson' is only offered by the fullstory dialect; use json or csv, or set api.dialect: fullstory")
        }
        let exportFieldList = fields.fields ?? defaults.fields ?? []
        if !exportFieldList.isEmpty, api.dialect != .fullstory {
            error(has("fields")?.value.location ?? location, "'fields' is only sent by the fullstory dialect; remove it or set api.dialect: fullstory")
        }
        let timeZone = fields.timeZone ?? defaults.timeZone ?? TimeZone(identifier: "UTC")!
        let timeZoneName = (fields.timeZone != nil ? fields.timeZoneName : defaults.timeZone != nil ? defaults.timeZoneName : nil) ?? "UTC"
        let windowFields = WindowFields(every: Span(days: 1), last: Span(days: 30), settle: Span(hours: 24))
            .overlaid(by: defaults.window).overlaid(by: fields.window)

        var extent: WindowSpec.Extent?
        if let start = windowFields.start {
            if let date = Timestamp.parseDay(start.text, in: timeZone) ?? Timestamp.parse(start.text) {
                extent = .start(date)
            } else {
                error(start.location, "invalid start '\(start.text)': write a date like 2026-01-01 or a time like 2026-01-01T00:00:00Z")
            }
        } else if let last = windowFields.last {
            extent = .last(last)
            if let every = windowFields.every, every.nominalSeconds > 0,
               last.nominalSeconds.truncatingRemainder(dividingBy: every.nominalSeconds) != 0 {
                let count = Int((last.nominalSeconds / every.nominalSeconds).rounded(.up))
                warning(windowFields.lastLocation ?? location, "last: \(last) is not a whole number of 'every: \(every)' partitions; the window is rounded out to \(count) of them")
            }
        }
        if let final = windowFields.final, let settle = windowFields.settle, final.nominalSeconds < settle.nominalSeconds {
            error(windowFields.finalLocation ?? location, "final: \(final.isZero ? "0" : final.description) is shorter than settle: \(settle.isZero ? "0" : settle.description); a partition is first exported after 'settle' and final after 'final', so make final at least \(settle.isZero ? "0" : settle.description) (or leave it out: it defaults to settle)")
        }
        guard errorCount == errorsBefore,
              let name, let segment = fields.segment, let type, let extent,
              let every = windowFields.every, let cadence = Cadence(every), let settle = windowFields.settle
        else { return nil }
        return ExportSpec(
            name: name, segment: segment, type: type, format: format,
            window: WindowSpec(every: every, cadence: cadence, extent: extent, settle: settle, final: windowFields.final),
            timeZone: timeZone, timeZoneName: timeZoneName, segmentWindow: fields.segmentWindow ?? defaults.segmentWindow,
            fields: exportFieldList, decompress: fields.decompress ?? defaults.decompress ?? false,
            prune: fields.prune ?? defaults.prune ?? prune, location: location)
    }
}
