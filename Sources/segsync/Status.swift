import ArgumentParser
import Foundation
import SegSync
import SegSyncStorage

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show, per export, how many partitions are done, running, failed and missing.",
        discussion: """
            Reads state only (no network, no lock), so it can watch an apply that is running. \
            Running operations are listed with their last known progress.
            """)

    @OptionGroup var manifest: ManifestOptions
    @OptionGroup var planning: PlanningOptions

    func run() async throws {
        let now = try planning.instant()
        let report = try await reportingDiagnostics {
            // The endpoint in force decides which data counts as done (Manifest.resolvingEndpoint).
            let (loaded, _, state) = try await StateBackend.read(manifestPath: manifest.file)
            try Planner.validate(targets: planning.targets, in: loaded)
            var selected = loaded
            if !planning.targets.isEmpty { selected.exports = loaded.exports.filter { planning.targets.contains($0.name) } }
            return try StatusReport.make(manifest: selected, state: state, now: now)
        }
        printOut(report.rendered())
    }
}
