import ArgumentParser
import Foundation
import SegSync

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check the manifest and report every problem with its line and column.",
        discussion: Help.text(
            """
            Reads nothing but the manifest, writes nothing, needs no network. Errors and warnings \
            are printed compiler-style (file:line:column: error: …). Exit status 0 when valid, \
            1 otherwise.
            """,
            Help.environment("GITHUB_ACTIONS"),
            Help.examples("segsync validate", "segsync validate -f pipelines/fullstory/")))

    @OptionGroup var manifest: ManifestOptions

    func run() async throws {
        let loaded = try await reportingDiagnostics {
            let loaded = try ManifestLoader.load(path: manifest.path)
            printWarnings(loaded, now: Date())
            // Windows that cannot be planned (too many partitions) are a manifest problem too.
            try loaded.checkWindows(now: Date())
            return loaded
        }
        let exports = loaded.exports.count, warnings = loaded.warnings.count + loaded.windowWarnings(now: Date()).count
        let noted = warnings == 0 ? "" : " (\(warnings) warning\(warnings == 1 ? "" : "s"))"
        printOut("\(manifest.path): valid, \(exports) export\(exports == 1 ? "" : "s")\(noted).\n")
    }
}
