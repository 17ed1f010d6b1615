import Foundation
import SegSyncVocabulary
import Testing
@testable import SegSync
import FullStoryContract

@Suite(.timeLimit(.minutes(2))) struct ManifestTests {
    static let valid = """
        version: 1
        api:
          endpoint: https://api.fullstory.com
          dialect: fullstory
          keyEnv: FS_KEY
          rateLimit: { perSecond: 2.5, burst: 4 }
        output: out
        defaults:
          format: csv
          timezone: Europe/Paris
          window: { every: 1d, last: 10d, settle: 12h }
        exports:
          - name: checkout-events
            segment: checkout_abandoners
            type: events
            window: { every: 1h, last: 2d }
          - name: everyone.daily_v2
            segment: everyone
            type: individuals
            format: ndjson
            segmentWindow: 90d
            fields: [UserId, "user_*"]
            window: { start: 2026-01-01 }
            decompress: true
        """

    func diagnostics(_ text: String) -> [String] {
        ManifestLoader.decode(text, file: "segsync.yaml").1.map(\.description)
    }

    @Test("a valid manifest decodes with defaults applied field by field")
    func validManifest() throws {
        let (manifest, diagnostics) = ManifestLoader.decode(Self.valid, file: "segsync.yaml")
        #expect(diagnostics.isEmpty)
        let m = try #require(manifest)
        #expect(m.api.dialect == .fullstory)
        #expect(m.api.keyEnv == "FS_KEY")
        #expect(m.api.rateLimit == RateLimit(perSecond: 2.5, burst: 4))
        #expect(m.output == "out")
        let hourly = try #require(m.export(named: "checkout-events"))
        #expect(hourly.format == .csv)
        #expect(hourly.timeZone.identifier == "Europe/Paris")
        #expect(hourly.window.cadence == .subDay(minutes: 60))
        #expect(hourly.window.extent == .last(Span(days: 2)))
        #expect(hourly.window.settle == Span(hours: 12))
        let daily = try #require(m.export(named: "everyone.daily_v2"))
        #expect(daily.format == .ndjson)
        #expect(daily.fields == ["UserId", "user_*"])
        #expect(daily.segmentWindow == Span(days: 90))
        #expect(daily.decompress)
        #expect(daily.window.cadence == .day)
        guard case .start(let start) = daily.window.extent else { Issue.record("expected start"); return }
        #expect(Timestamp.format(start) == "2025-12-31T23:00:00Z")  // midnight in Paris
    }

    static func withState(_ block: String) -> String {
        "version: 1\n" + block + "\nexports:\n  - { name: e, segment: s, type: events, window: { every: 1d, last: 2d } }\n"
    }

    @Test("state defaults to SQLite; postgres takes urlEnv and workspace")
    func stateBlock() throws {
        let (plain, _) = ManifestLoader.decode(Self.withState(""), file: "segsync.yaml")
        #expect(plain?.state == StateSettings(backend: .sqlite, urlEnv: "SEGSYNC_DATABASE_URL", workspace: "default"))
        let (shared, diagnostics) = ManifestLoader.decode(
            Self.withState("state:\n  backend: postgres\n  urlEnv: ANALYTICS_DB\n  workspace: analytics.eu-1"), file: "segsync.yaml")
        #expect(diagnostics.isEmpty)
        #expect(shared?.state == StateSettings(backend: .postgres, urlEnv: "ANALYTICS_DB", workspace: "analytics.eu-1"))
    }

    @Test("state mistakes are diagnosed where they are, and a connection string is never accepted", arguments: [
        ("state:\n  backend: postgress", "segsync.yaml:3:12: error: unknown backend 'postgress'"),
        ("state:\n  backnd: postgres", "segsync.yaml:3:3: error: unknown key 'backnd' (did you mean 'backend'?)"),
        ("state:\n  backend: postgres\n  url: postgres://u:hunter2@db/segsync", "the manifest must not contain a database URL ('url')"),
        ("state:\n  backend: postgres\n  urlEnv: postgres://u:hunter2@db/segsync", "the manifest must not contain a database URL ('urlEnv')"),
        ("state:\n  backend: postgres\n  urlEnv: my-db", "urlEnv must name an environment variable"),
        ("state:\n  workspace: ../other", "workspace must be a name of letters, digits"),
        ("state: postgres", "expected a mapping for 'state'"),
    ])
    func stateMistakes(block: String, expected: String) throws {
        let found = diagnostics(Self.withState(block))
        #expect(found.contains { $0.contains(expected) }, "\(found)")
        #expect(!found.joined().contains("hunter2"))
    }

    @Test("FULLSTORY_API_URL=emulator runs a production manifest against the built-in emulator")
    func emulatorOverride() throws {
        let (manifest, _) = ManifestLoader.decode(Self.valid, file: "segsync.yaml")
        let resolved = try #require(manifest).resolvingEndpoint(environment: ["FULLSTORY_API_URL": "emulator"])
        #expect(resolved.api.endpoint == APISettings.emulatorEndpoint)
        #expect(try #require(manifest).resolvingEndpoint(environment: [:]).api.endpoint == "https://api.fullstory.com")
    }

    @Test("urlEnv without the postgres backend is a warning: it would be ignored")
    func urlEnvWithoutPostgres() throws {
        let (manifest, found) = ManifestLoader.decode(Self.withState("state:\n  urlEnv: DB"), file: "segsync.yaml")
        #expect(manifest != nil)
        #expect(found.map(\.description) == ["segsync.yaml:3:3: warning: urlEnv is only read by the postgres backend; this manifest's state is SQLite (add 'backend: postgres' to share it)"])
    }

    @Test("unknown keys suggest the nearest valid one, at the key's line and column")
    func unknownKey() {
        let text = "version: 1\nexports:\n  - name: a\n    segment: s\n    type: events\n    fromat: csv\n"
        #expect(diagnostics(text) == ["segsync.yaml:6:5: error: unknown key 'fromat' (did you mean 'format'?)"])
    }

    @Test("unknown enum values suggest the nearest and list the options")
    func unknownEnum() {
        let text = "version: 1\napi: { dialect: fullstroy }\nexports:\n  - { name: a, segment: s, type: individual, format: jsno }\n"
        #expect(diagnostics(text) == [
            "segsync.yaml:2:17: error: unknown dialect 'fullstroy' (did you mean 'fullstory'?); expected one of: seed, fullstory",
            "segsync.yaml:4:34: error: unknown type 'individual' (did you mean 'individuals'?); expected one of: individuals, events",
            "segsync.yaml:4:54: error: unknown format 'jsno' (did you mean 'json'?); expected one of: json, csv, ndjson",
        ])
    }

    @Test("durations: valid spellings parse, others are errors", arguments: ["15m", "1h", "1d", "1w", "1d12h", "2w3d4h5m"])
    func validDurations(text: String) {
        #expect(Span(text) != nil)
    }

    @Test("invalid durations", arguments: ["", "0d", "15", "h", "1x", "1h1d", "1d1d", "-1d", "1.5h", "1 d"])
    func invalidDurations(text: String) {
        #expect(Span(text) == nil)
    }

    @Test("a bad duration is reported where it is written")
    func badDuration() {
        let text = "version: 1\nexports:\n  - name: a\n    segment: s\n    type: events\n    window: { every: 1d, last: 30days }\n"
        #expect(diagnostics(text) == ["segsync.yaml:6:32: error: invalid duration '30days' for 'last': write a number and a unit, like 15m, 1h, 1d, 1w or 1d12h"])
    }

    @Test("an every that cannot be aligned is an error")
    func unalignableEvery() {
        let text = "version: 1\nexports:\n  - { name: a, segment: s, type: events, window: { every: 7h } }\n"
        #expect(diagnostics(text).first?.hasPrefix("segsync.yaml:3:59: error: every: 7h cannot be aligned") == true)
    }

    @Test("unknown IANA time zones suggest the nearest")
    func badTimeZone() {
        let text = "version: 1\nexports:\n  - { name: a, segment: s, type: events, timezone: Europe/Pariss }\n"
        #expect(diagnostics(text) == ["segsync.yaml:3:52: error: unknown time zone 'Europe/Pariss' (did you mean 'Europe/Paris'?); use an IANA name like UTC, Europe/Paris or America/New_York"])
    }

    @Test("current IANA names load even when the system's list misses them", arguments: ["Asia/Kolkata", "Europe/Kyiv", "America/New_York", "UTC"])
    func currentZoneNames(zone: String) {
        let text = "version: 1\nexports:\n  - { name: a, segment: s, type: events, timezone: \(zone) }\n"
        #expect(diagnostics(text).isEmpty)
    }

    @Test("duplicate export names name the first declaration")
    func duplicateNames() {
        let text = "version: 1\nexports:\n  - { name: a, segment: s, type: events }\n  - { name: a, segment: t, type: events }\n"
        #expect(diagnostics(text) == ["segsync.yaml:4:13: error: duplicate export name 'a' (first declared at 3:13)"])
    }

    @Test("names outside [a-z0-9][a-z0-9._-]* are refused", arguments: ["Upper", "-lead", ".dot", "has space", "ünï"])
    func badNames(name: String) {
        let text = "version: 1\nexports:\n  - { name: '\(name)', segment: s, type: events }\n"
        #expect(diagnostics(text).first?.contains("error: export name") == true)
    }

    @Test("last and start together")
    func lastAndStart() {
        let text = "version: 1\nexports:\n  - { name: a, segment: s, type: events, window: { last: 2d, start: 2026-01-01 } }\n"
        #expect(diagnostics(text) == ["segsync.yaml:3:52: error: 'last' and 'start' cannot be used together; 'last' keeps a rolling window, 'start' backfills from a fixed date"])
    }

    @Test("a literal API key is refused without echoing it")
    func literalKey() {
        let secret = "na1.c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
        for text in [
            "version: 1\napi: { apiKey: \(secret) }\nexports:\n  - { name: a, segment: s, type: events }\n",
            "version: 1\napi: { keyEnv: \(secret) }\nexports:\n  - { name: a, segment: s, type: events }\n",
            "version: 1\nexports:\n  - { name: a, segment: \(secret), type: events }\n",
        ] {
            let found = diagnostics(text)
            #expect(found.count == 1)
            #expect(found.first?.contains("API key") == true || found.first?.contains("key itself") == true)
            #expect(found.allSatisfy { !$0.contains(secret) })
        }
    }

    @Test("schema-typed scalars: 'no' is a segment, 'on' an unknown key, not booleans")
    func typedScalars() {
        let text = "version: 1\nexports:\n  - name: a\n    segment: no\n    type: events\n    on: 1d\n"
        #expect(diagnostics(text) == ["segsync.yaml:6:5: error: unknown key 'on'"])
        let ok = ManifestLoader.decode("version: 1\nexports:\n  - { name: a, segment: no, type: events }\n", file: "m").0
        #expect(ok?.exports.first?.segment == "no")
    }

    @Test("five mistakes are reported together, in file order")
    func fiveMistakes() {
        let text = """
            version: 1
            api: { dialect: sed }
            exports:
              - name: Bad_Name
                segment: s
                type: events
                window: { every: 1d, last: 3x }
              - name: b
                segment: s
                type: events
                timezone: Mars/Base
                colour: blue
            """
        let found = diagnostics(text)
        #expect(found.count == 5)
        #expect(found.map { $0.split(separator: ":").prefix(3).joined(separator: ":") } == [
            "segsync.yaml:2:17", "segsync.yaml:4:11", "segsync.yaml:7:32", "segsync.yaml:11:15", "segsync.yaml:12:5",
        ])
    }

    @Test("plain http is refused for non-loopback endpoints")
    func plainHTTP() {
        #expect(ManifestDecoder.endpointProblem("http://api.fullstory.com") != nil)
        #expect(ManifestDecoder.endpointProblem("http://127.0.0.1:8080") == nil)
        #expect(ManifestDecoder.endpointProblem("http://localhost:1") == nil)
        #expect(ManifestDecoder.endpointProblem("https://api.eu1.fullstory.com") == nil)
        #expect(ManifestDecoder.endpointProblem("emulator") == nil)
        #expect(ManifestDecoder.endpointProblem("ftp://x") != nil)
        // One rule for the manifest and the client: a name that starts like 127. is not loopback.
        #expect(ManifestDecoder.endpointProblem("http://127.evil.com") != nil)
        #expect(ManifestDecoder.endpointProblem("http://127.0.0.1.nip.io:80") != nil)
        #expect(ManifestDecoder.endpointProblem("http://[::1]:8080") == nil)
    }

    @Test("warnings: near misses of known field names, a 'last' that is not whole partitions; a quoted version is fine")
    func warnings() throws {
        let text = """
            version: "1"
            api: { dialect: fullstory }
            exports:
              - name: a
                segment: s
                type: events
                fields: [UserID, user_*, EventType, SomethingNew]
                window: { every: 1d, last: 36h }
            """
        let (manifest, found) = ManifestLoader.decode(text, file: "segsync.yaml")
        #expect(manifest != nil)
        #expect(found.map(\.description) == [
            "segsync.yaml:7:14: warning: 'UserID' is not a field FullStory is known to export (did you mean 'UserId'?); the export would leave it out",
            "segsync.yaml:8:32: warning: last: 36h is not a whole number of 'every: 1d' partitions; the window is rounded out to 2 of them",
        ])
        #expect(manifest?.warnings.count == 2)
    }

    @Test("a start after now is a warning at its export")
    func startInTheFuture() throws {
        let text = "version: 1\nexports:\n  - { name: a, segment: s, type: events, window: { every: 1d, start: 2027-06-01 } }\n"
        let manifest = try #require(ManifestLoader.decode(text, file: "segsync.yaml").0)
        #expect(manifest.windowWarnings(now: Timestamp.parse("2026-12-01T00:00:00Z")!).map(\.description) == [
            "segsync.yaml:3:7: warning: export 'a' starts at 2027-06-01T00:00:00Z, after now; it has no partitions until then",
        ])
        #expect(manifest.windowWarnings(now: Timestamp.parse("2027-07-01T00:00:00Z")!).isEmpty)
    }

    @Test("a duplicate export name does not hide that export's other mistakes")
    func duplicateNameStillChecked() {
        let found = diagnostics("version: 1\nexports:\n  - { name: a, segment: s, type: events }\n  - { name: a, segment: s, type: evnts }\n")
        #expect(found.count == 2)
        #expect(found.contains { $0.contains("duplicate export name 'a'") })
        #expect(found.contains { $0.contains("'evnts'") })
    }

    @Test("a window too long to plan is reported at its export, with the hint for its kind")
    func partitionLimit() throws {
        let text = "version: 1\nexports:\n  - { name: a, segment: s, type: events, window: { every: 15m, last: 3000d } }\n"
        let manifest = try #require(ManifestLoader.decode(text, file: "segsync.yaml").0)
        #expect {
            try manifest.partitions(of: manifest.exports[0], now: Date(timeIntervalSince1970: 1_800_000_000))
        } throws: { error in
            let text = (error as? DiagnosticsError)?.description ?? ""
            return text.hasPrefix("segsync.yaml:3:7: error: export 'a' would have more than 200000 partitions; use a longer 'every' or a shorter 'last'")
        }
        // validate checks the same without cutting the partitions, and names every such export.
        let two = try #require(ManifestLoader.decode(text + "  - { name: b, segment: s, type: events, window: { every: 1m, start: 2020-01-01 } }\n", file: "segsync.yaml").0)
        #expect {
            try two.checkWindows(now: Date(timeIntervalSince1970: 1_800_000_000))
        } throws: { error in
            let text = (error as? DiagnosticsError)?.description ?? ""
            return text.contains("segsync.yaml:3:7: error: export 'a' would have more than 200000 partitions")
                && text.contains("segsync.yaml:4:7: error: export 'b' would have more than 200000 partitions; use a longer 'every' or a later 'start'")
        }
        let fine = try #require(ManifestLoader.decode("version: 1\nexports:\n  - { name: c, segment: s, type: events }\n", file: "segsync.yaml").0)
        #expect(throws: Never.self) { try fine.checkWindows(now: Date(timeIntervalSince1970: 1_800_000_000)) }
    }

    @Test("the time zone sent to the API is the IANA name the manifest gave, UTC by default")
    func timeZoneSent() throws {
        let text = """
            version: 1
            exports:
              - { name: a, segment: s, type: events }
              - { name: b, segment: s, type: events, timezone: UTC }
              - { name: c, segment: s, type: events, timezone: Europe/Paris }
              - { name: d, segment: s, type: events, timezone: Etc/UTC }
            """
        let manifest = try #require(ManifestLoader.decode(text, file: "segsync.yaml").0)
        let now = Timestamp.parse("2026-11-28T00:00:00Z")!
        let sent = try manifest.exports.map { export in
            ExportRequest(partition: try manifest.partitions(of: export, now: now)[0], export: export).timezone
        }
        #expect(sent == ["UTC", "UTC", "Europe/Paris", "Etc/UTC"])
    }

    @Test("dialect-only features are refused with the seed dialect")
    func dialectFeatures() {
        let text = "version: 1\nexports:\n  - { name: a, segment: s, type: events, format: ndjson, fields: [x] }\n"
        let found = diagnostics(text)
        #expect(found.count == 2)
        #expect(found.allSatisfy { $0.contains("fullstory dialect") })
    }

    @Test("missing version, empty file, missing exports")
    func missingBasics() {
        #expect(diagnostics("").first?.contains("empty") == true)
        #expect(diagnostics("exports: []\n").contains { $0.contains("no 'version'") })
        #expect(diagnostics("version: 2\nexports:\n  - { name: a, segment: s, type: events }\n").first?.contains("unsupported manifest version") == true)
        #expect(diagnostics("version: 1\n").first?.contains("no 'exports'") == true)
    }
}
