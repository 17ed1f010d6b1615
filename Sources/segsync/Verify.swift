import ArgumentParser
import SegSync

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the output folder against segsync.lock, offline.",
        discussion: """
            Hashes every recorded file and lists missing, changed and unknown files and any \
            disagreement with SHA256SUMS. Needs no network and no lock, so it can run during an \
            apply. Exit status 0 when everything matches, 1 otherwise.
            """)

    @OptionGroup var manifest: ManifestOptions

    func run() async throws {
        let result = try await reportingDiagnostics {
            let loaded = try ManifestLoader.load(path: manifest.file)
            let layout = Layout(manifestPath: manifest.file, output: loaded.output)
            return (try Verification.run(layout: layout), layout)
        }
        printOut(result.0.rendered(outputDirectory: result.1.outputDirectory))
        if !result.0.ok { throw ExitCode(ExitCodes.failure) }
    }
}
