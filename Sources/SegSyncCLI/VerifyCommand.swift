import ArgumentParser
import Foundation
import SegSync

struct VerifyCommand: ContextCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the outputs against segsync.lock, without the FullStory API.",
        discussion: """
            Hashes every recorded file and lists missing, changed and unknown files and any \
            disagreement with SHA256SUMS. Needs no FullStory API and no lock, so it can run \
            during an apply. Exit status 0 when everything matches, 1 otherwise.

            In a bucket (output: s3://…), one listing of the prefix is compared with the \
            lockfile's sizes and ETags, so a deleted or replaced object is found without \
            reading any; --checksum reads and hashes every object as well. A folder's files \
            are always hashed.

            --sha256sums checks only what SHA256SUMS lists, as `sha256sum -c SHA256SUMS` run \
            inside the output folder does, without changing folder: the check for someone who \
            was handed the folder and no lockfile.

            Examples:
              segsync verify
              segsync verify --sha256sums
              segsync verify --checksum            # a bucket's objects read and hashed too
              segsync verify --json | jq .ok
              (cd exports && sha256sum -c SHA256SUMS)    # the same check with coreutils

            """ + Help.environment("NO_COLOR"))

    @OptionGroup var manifest: ManifestOptions

    @Flag(help: "Check the files SHA256SUMS lists against it, as sha256sum -c does, instead of against segsync.lock.")
    var sha256sums = false

    @Flag(help: "Read and hash every object in a bucket too, instead of trusting an unchanged size and ETag. A folder's files are always hashed.")
    var checksum = false

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
            let result = try await sha256sums ? Verification.sha256sums(layout: layout, output: output) : Verification.run(layout: layout, output: output, checksum: checksum)
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
