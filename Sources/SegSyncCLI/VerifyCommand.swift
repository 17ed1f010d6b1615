import ArgumentParser
import Foundation
import SegSync

struct VerifyCommand: ContextCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the output folder against segsync.lock, offline.",
        discussion: """
            Hashes every recorded file and lists missing, changed and unknown files and any \
            disagreement with SHA256SUMS. Needs no network and no lock, so it can run during an \
            apply. Exit status 0 when everything matches, 1 otherwise.

            --sha256sums checks only what SHA256SUMS lists, as `sha256sum -c SHA256SUMS` run \
            inside the output folder does, without changing folder: the check for someone who \
            was handed the folder and no lockfile.

            Examples:
              segsync verify
              segsync verify --sha256sums
              segsync verify --json | jq .ok
              (cd exports && sha256sum -c SHA256SUMS)    # the same check with coreutils

            """ + Help.environment("NO_COLOR"))

    @OptionGroup var manifest: ManifestOptions

    @Flag(help: "Check the files SHA256SUMS lists against it, as sha256sum -c does, instead of against segsync.lock.")
    var sha256sums = false

    @Flag(help: "Print a JSON document (format_version 1).")
    var json = false

    var common: OutputOptions { manifest.output }

    func run(in context: CommandContext) async throws {
        let against = sha256sums ? Checksums.fileName : Lockfile.fileName
        let path = manifest.path(in: context)
        let (result, location) = try await context.reportingDiagnostics {
            let loaded = try ManifestLoader.load(path: path, in: context.directory)
            let layout = Layout(manifestPath: path, output: loaded.output, workingDirectory: context.directory)
            let output = try await context.openOutput(loaded, layout, context.environment)
            let result = try await sha256sums ? Verification.sha256sums(layout: layout, output: output) : Verification.run(layout: layout, output: output)
            return (result, output is FolderOutput ? layout.outputDirectory : output.location)
        }
        try context.print(Shown(result: result, outputDirectory: location, against: against), json: json)
        if !result.ok { throw ExitCode(ExitCodes.failure) }
    }

    /// The verification: its document, or its lines (every line is a problem or the final
    /// line, so `-q` prints the same).
    struct Shown: CommandOutput {
        var result: Verification
        var outputDirectory: String
        var against: String
        var document: Verification.Document { result.document(against: against) }
        func text(_ output: Output) -> String { result.rendered(outputDirectory: outputDirectory, against: against, paint: output.paint) }
    }
}
