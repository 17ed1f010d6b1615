import ArgumentParser
import Foundation
import SegSync
import SegSyncStorage

struct StatusCommand: ContextCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show, per export, how many partitions are done, running, failed and missing, and a strip of them.",
        discussion: """
            Reads state only (no network, no lock), so it can watch an apply that is running. \
            Below the table, each export's coverage strip has one cell per desired partition, oldest \
            first, folded to the terminal's width (COLUMNS) with the partition at each row's start: \
            █ done, ▒ running, ▓ ready to download, ✗ failed, · missing. Running operations are \
            listed with their last known progress. FULLSTORY_API_URL matters because files \
            from another endpoint do not count as done.
            """ + "\n\n" + Help.environment("SEGSYNC_DATABASE_URL", "FULLSTORY_API_URL", "NO_COLOR", "COLUMNS") + "\n\n"
            + Help.examples(
                "segsync status",
                "segsync status --target everyone-daily --now 2026-11-28T00:00:00Z",
                "segsync status --json | jq '.exports[] | {name, missing}'",
                "watch -n 5 segsync status    # beside a running apply"))

    @OptionGroup var manifest: ManifestOptions
    @OptionGroup var planning: PlanningOptions

    @Flag(help: "Print a JSON document (format_version 1): the counts and every partition's status.")
    var json = false

    @Flag(help: "Leave out the coverage strips.")
    var noStrip = false

    var common: OutputOptions { manifest.output }

    func run(in context: CommandContext) async throws {
        let now = try planning.instant(context)
        let report = try await context.reportingDiagnostics {
            // The endpoint in force decides which data counts as done (Manifest.resolvingEndpoint).
            let reading = try await context.readState(manifest)
            try Planner.validate(targets: planning.targets, in: reading.manifest)
            var selected = reading.manifest
            if !planning.targets.isEmpty { selected.exports = selected.exports.filter { planning.targets.contains($0.name) } }
            return try StatusReport.make(manifest: selected, state: reading.state, now: now)
        }
        try context.print(Shown(report: report, strips: !noStrip), json: json)
    }

    /// The report: its document, its text (with or without the coverage strips), and with
    /// `-q` its summary line.
    struct Shown: CommandOutput {
        var report: StatusReport
        var strips: Bool
        var document: StatusReport.Document { report.document }
        func text(_ output: Output) -> String { report.rendered(width: output.width, paint: output.paint, strips: strips) }
        func quiet(_ output: Output) -> String { report.summary + "\n" }
    }
}
