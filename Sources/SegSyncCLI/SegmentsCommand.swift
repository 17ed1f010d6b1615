import ArgumentParser
import Foundation
import FullStoryAPI
import FullStoryContract
import SegSync
import SegSyncVocabulary

/// `segsync segments`: the segments an API key can see, to find the ids a manifest needs.
struct SegmentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segments",
        abstract: "List or show FullStory segments.",
        discussion: Help.text(
            """
            Finds the segment ids a manifest's exports need. Uses the manifest's api block \
            (endpoint, dialect, keyEnv) when there is one; --endpoint, --dialect and --key-env \
            override it.
            """,
            Help.environment("FULLSTORY_API_KEY", "FULLSTORY_API_URL"),
            Help.examples("segsync segments list", "segsync segments show everyone --json",
                          "segsync segments list --endpoint https://api.fullstory.com --dialect fullstory")),
        subcommands: [List.self, Show.self]
    )

    /// Where the API is and which key to use; the same flags on every subcommand. Without
    /// flags, the manifest's `api` block is used when there is a manifest.
    struct APIOptions: ParsableArguments {
        @Option(name: [.short, .customLong("manifest")],
                help: ArgumentHelp("Take the API settings from this manifest, or a folder holding segsync.yaml (default: ./segsync.yaml, if present).", valueName: "path"))
        var file: String?

        @OptionGroup var output: OutputOptions

        @Option(help: ArgumentHelp("API endpoint (default: the manifest's, else https://api.fullstory.com). FULLSTORY_API_URL overrides it.", valueName: "url"))
        var endpoint: String?

        @Option(
            help: ArgumentHelp("API dialect: seed (the published contract) or fullstory (production). Default: the manifest's, else seed.", valueName: "dialect"),
            transform: { text in
                guard let dialect = Dialect(rawValue: text) else {
                    throw ValidationError("--dialect must be seed or fullstory, not '\(text)'.")
                }
                return dialect
            }
        )
        var dialect: Dialect?

        @Option(name: .customLong("key-env"), help: ArgumentHelp("Environment variable that holds the API key (default: the manifest's api.keyEnv, else FULLSTORY_API_KEY).", valueName: "variable"))
        var keyEnv: String?

        /// Runs `body` with a client for the manifest's API (the built-in emulator included)
        /// or for the flags, and shuts it down afterwards.
        func withClient<T: Sendable>(in context: CommandContext, _ body: (FullStoryClient) async throws -> T) async throws -> T {
            // The manifest's api block when there is one (and no --endpoint replaces it),
            // else the defaults; the endpoint by the one rule, `emulator` included.
            let path = ManifestOptions.resolve(file ?? ManifestOptions.defaultName, in: context)
            var api = APISettings()
            if file != nil || (endpoint == nil && FileManager.default.fileExists(atPath: context.path(path))) {
                api = try await context.reportingDiagnostics { try ManifestLoader.load(path: path, in: context.directory).api }
            }
            api.endpoint = try APIEndpoint.effective(flag: endpoint, environment: context.environment, configured: api.endpoint)
            if let dialect { api.dialect = dialect }
            if let keyEnv { api.keyEnv = keyEnv }
            return try await APIConnection.with(api: api, context: context) { try await body($0.client) }
        }
    }

    struct List: ContextCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List every segment, all pages.",
            discussion: Help.text(Help.environment("FULLSTORY_API_KEY", "FULLSTORY_API_URL"),
                                  Help.examples("segsync segments list", "segsync segments list --json | jq -r '.segments[].id'")))

        @OptionGroup var api: APIOptions

        @Flag(help: "Print a JSON document (format_version 1) with the segments instead of a table.")
        var json = false

        var common: OutputOptions { api.output }

        func run(in context: CommandContext) async throws {
            let segments = try await api.withClient(in: context) { try await $0.listSegments() }
            try context.print(Listing(segments: segments), json: json)
        }
    }

    struct Show: ContextCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show one segment.",
            discussion: Help.text(Help.environment("FULLSTORY_API_KEY", "FULLSTORY_API_URL"),
                                  Help.examples("segsync segments show everyone", "segsync segments show checkout_abandoners --json")))

        @OptionGroup var api: APIOptions

        @Argument(help: "The segment id, e.g. everyone.")
        var id: String

        @Flag(help: "Print a JSON document (format_version 1) with the segment instead of text.")
        var json = false

        var common: OutputOptions { api.output }

        func run(in context: CommandContext) async throws {
            let segment = try await api.withClient(in: context) { try await $0.getSegment(id) }
            try context.print(Details(segment: segment), json: json)
        }
    }

    /// Aligned columns; a built-in segment has no creator or creation time.
    static func table(_ segments: [Segment]) -> String {
        let header = ["ID", "NAME", "CREATOR", "CREATED"]
        let rows = segments.map { [$0.id, $0.name, $0.creator ?? "-", $0.created.map(Timestamp.format) ?? "-"] }
        var widths = header.map(\.count)
        for row in rows {
            for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                column == cells.count - 1 ? cell : cell.padded(to: widths[column])
            }.joined(separator: "  ") + "\n"
        }
        let noun = segments.count == 1 ? "segment" : "segments"
        return line(header) + rows.map(line).joined() + "\(segments.count) \(noun).\n"
    }

    /// `segments list --json` (`segments`) and `segments show --json` (`segment`).
    struct Document: MachineDocument {
        var segments: [Segment]?
        var segment: Segment?
    }

    /// `segments list`: a table, or the document.
    struct Listing: CommandOutput {
        var segments: [Segment]
        var document: Document { Document(segments: segments) }
        func text(_ output: Output) -> String { SegmentsCommand.table(segments) }
    }

    /// `segments show`: one labelled line per field, or the document.
    struct Details: CommandOutput {
        var segment: Segment
        var document: Document { Document(segment: segment) }
        func text(_ output: Output) -> String {
            let rows: [(String, String)] = [
                ("id", segment.id), ("name", segment.name), ("creator", segment.creator ?? "-"),
                ("created", segment.created.map(Timestamp.format) ?? "- (built-in)"),
            ] + (segment.url.map { [("url", $0)] } ?? [])
            return rows.map { label, value in "\((label + ":").padded(to: 9))\(value)\n" }.joined()
        }
    }

}
