import ArgumentParser
import Foundation
import SegSync

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the manifest and report every problem with its line and column.",
        discussion: "Reads nothing but the manifest, writes nothing, needs no network. Exit status 0 when valid, 1 otherwise.")

    @OptionGroup var manifest: ManifestOptions

    func run() async throws {
        let loaded = try await reportingDiagnostics { try ManifestLoader.load(path: manifest.file) }
        // Windows that cannot be planned (too many partitions) are a manifest problem too.
        for export in loaded.exports { _ = try loaded.partitions(of: export, now: Date()) }
        let partitions = loaded.exports.count
        printOut("\(manifest.file): valid, \(partitions) export\(partitions == 1 ? "" : "s").\n")
    }
}
