import ArgumentParser
import Foundation
import FullStoryAPI
import FullStoryContract
import SegSync

/// `segsync init`: a commented starter manifest, written without questions.
struct InitCommand: ContextCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a commented starter segsync.yaml.",
        discussion: """
            Asks nothing: the flags choose the segment and the endpoint, the comments explain \
            every other key. Refuses to overwrite an existing manifest unless --force. Run \
            `segsync validate`, then `segsync plan`.

            Examples:
              segsync init --endpoint emulator && segsync apply    # try it, no account needed
              segsync init --segment checkout_abandoners
              segsync init -f pipelines/fullstory/                 # writes pipelines/fullstory/segsync.yaml
            """)

    @OptionGroup var manifest: ManifestOptions

    @Option(help: ArgumentHelp("The segment the first export reads (`segsync segments list` shows the ids).", valueName: "segment-id"))
    var segment = "everyone"

    @Option(help: ArgumentHelp("The API: https://api.fullstory.com, another https URL, or emulator (the built-in one, no account).", valueName: "url|emulator"))
    var endpoint = "https://api.fullstory.com"

    @Flag(help: "Overwrite an existing manifest.")
    var force = false

    func validate() throws {
        // The manifest's own rule (APIEndpoint), so init never writes an endpoint validate refuses.
        if endpoint != APISettings.emulatorEndpoint, let problem = APIEndpoint.problem(with: endpoint) {
            throw ValidationError("--endpoint \(redacted(endpoint)) \(problem); write --endpoint https://api.fullstory.com or --endpoint emulator.")
        }
        if segment.isEmpty || segment.contains(where: { $0.isWhitespace || $0 == "\"" }) {
            throw ValidationError("--segment '\(segment)' is not a segment id; `segsync segments list` shows the ids.")
        }
    }

    var common: OutputOptions { manifest.output }

    func run(in context: CommandContext) async throws {
        let path = manifest.path(in: context), file = context.path(path)
        if FileManager.default.fileExists(atPath: file), !force {
            throw SegSyncError("\(path) already exists; segsync init does not overwrite it (pass --force to replace it).")
        }
        try AtomicFile.makeDirectory((file as NSString).deletingLastPathComponent)
        try AtomicFile.write(Data(Self.starter(segment: segment, endpoint: endpoint).utf8), to: file, newFileMode: 0o644)
        guard context.output.verbosity > .quiet else { return }
        let flag = path == ManifestOptions.defaultName ? "" : " -f \(path)"
        var next = ["Wrote \(path). Next:", "  segsync validate\(flag)", "  segsync plan\(flag)", "  segsync apply\(flag)"]
        if endpoint != APISettings.emulatorEndpoint {
            next.insert("  export FULLSTORY_API_KEY=…   # a key with the Architect or Admin role", at: 1)
        }
        next.append("Commit segsync.yaml and segsync.lock; keep .segsync/ (the state) out of git.")
        context.out(next.joined(separator: "\n") + "\n")
    }

    /// An export name from a segment id: `checkout_abandoners` → `checkout-abandoners-daily`.
    static func exportName(_ segment: String) -> String {
        var name = String(segment.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" })
        while name.contains("--") { name = name.replacingOccurrences(of: "--", with: "-") }
        name = String(name.drop(while: { $0 == "-" }))
        if name.isEmpty || !(name.first!.isLetter || name.first!.isNumber) || !name.allSatisfy(\.isASCII) { name = "segment" }
        return String(name.prefix(50)) + "-daily"
    }

    static func starter(segment: String, endpoint: String) -> String {
        let emulator = endpoint == APISettings.emulatorEndpoint
        return """
            # segsync manifest: the exports this folder should hold. Commit it with segsync.lock.
            # `segsync validate` checks it, `segsync plan` shows what is missing, `segsync apply`
            # fetches it. Every key is described in segsync's README ("The manifest").
            version: 1

            api:
              # https://api.fullstory.com, or `emulator` to run the built-in one (no account).
              # FULLSTORY_API_URL overrides it (FULLSTORY_API_URL=emulator rehearses this file).
              endpoint: \(endpoint)
              # seed: the published OpenAPI contract; fullstory: the production service.
              dialect: \(emulator ? "seed" : "fullstory")
              # The variable that holds the API key; the key itself never goes in this file.
              keyEnv: FULLSTORY_API_KEY
              # Calls per second segsync allows itself, shared by every export.
              rateLimit: { perSecond: 5, burst: 10 }

            # Where files go, relative to this manifest: <output>/<export>/<partition>.<format>[.gz]
            output: exports

            # Delete files of exports removed from this manifest (`apply --prune` for one run).
            prune: false

            # State (which exports exist, which files are done) lives in .segsync/state.sqlite.
            # To share it between CI runners, keep it in PostgreSQL; the connection string is
            # read from SEGSYNC_DATABASE_URL, never from this file.
            # state:
            #   backend: postgres
            #   workspace: default

            defaults:
              format: json                 # json | csv | ndjson (fullstory dialect)
              timezone: UTC                # partitions align to local midnight in this zone
              # One file per day, the newest 30 settled days; FullStory recommends 24h to settle.
              window: { every: 1d, last: 30d, settle: 24h }

            exports:
              - name: \(exportName(segment))
                segment: \(segment)
                type: individuals          # individuals | events
                segmentWindow: 30d         # membership over the 30 days before each partition's end

              # Events, one file every 6 hours over the last 2 days, gzip-compressed CSV:
              # - name: \(exportName(segment).replacingOccurrences(of: "-daily", with: "-events"))
              #   segment: \(segment)
              #   type: events
              #   format: csv
              #   window: { every: 6h, last: 2d, settle: 2h }

            """
    }
}
