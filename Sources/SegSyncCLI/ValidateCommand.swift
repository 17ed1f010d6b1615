import ArgumentParser
import Foundation
import SegSync

struct ValidateCommand: ContextCommand {
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

    var common: OutputOptions { manifest.output }

    func run(in context: CommandContext) async throws {
        let path = manifest.path(in: context), now = context.now()
        let loaded = try await context.reportingDiagnostics {
            let loaded = try ManifestLoader.load(path: path, in: context.directory)
            context.printWarnings(loaded, now: now)
            // Windows that cannot be planned (too many partitions) are a manifest problem too.
            try loaded.checkWindows(now: now)
            return loaded
        }
        let exports = loaded.exports.count, warnings = loaded.warnings.count + loaded.windowWarnings(now: now).count
        let noted = warnings == 0 ? "" : " (\(warnings) warning\(warnings == 1 ? "" : "s"))"
        context.out("\(path): valid, \(exports) export\(exports == 1 ? "" : "s")\(noted).\n")
    }
}
