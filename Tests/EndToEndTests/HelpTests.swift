import Foundation
import Testing
import TestSupport

extension EndToEnd {
    /// Every command's `--help`, snapshotted: a change to a flag or its text shows up as a
    /// diff to review here and in the README. `SEGSYNC_UPDATE_SNAPSHOTS=1 swift test
    /// --filter HelpTests` rewrites the snapshots.
    @Suite(.serialized) struct HelpTests {
        static let commands: [[String]] = [
            [], ["init"], ["validate"], ["plan"], ["apply"], ["status"], ["verify"],
            ["segments"], ["segments", "list"], ["segments", "show"],
            ["state"], ["state", "list"], ["state", "show"], ["state", "rm"], ["state", "pull"], ["state", "push"],
        ]
        static let snapshots = (#filePath as NSString).deletingLastPathComponent + "/Snapshots/help"
        static let readme = ((#filePath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("../../README.md")

        static func help(_ command: [String]) async throws -> String {
            let result = try await CLI.run(command + ["--help"], in: NSTemporaryDirectory(), environment: ["COLUMNS": "100"])
            #expect(result.status == 0, "segsync \(command.joined(separator: " ")) --help: \(result.stderr)")
            return result.stdout
        }

        @Test("every command's --help matches its snapshot", arguments: commands)
        func snapshot(_ command: [String]) async throws {
            let text = try await Self.help(command)
            let file = Self.snapshots + "/" + (command.isEmpty ? "segsync" : command.joined(separator: "-")) + ".txt"
            if ProcessInfo.processInfo.environment["SEGSYNC_UPDATE_SNAPSHOTS"] == "1" {
                try text.write(toFile: file, atomically: true, encoding: .utf8)
                return
            }
            let recorded = try #require(try? String(contentsOfFile: file, encoding: .utf8), "no snapshot \(file); run with SEGSYNC_UPDATE_SNAPSHOTS=1")
            #expect(text == recorded, "segsync \(command.joined(separator: " ")) --help changed; review, then run with SEGSYNC_UPDATE_SNAPSHOTS=1")
        }

        @Test("every command and every flag in --help is documented in the README; every command has examples")
        func readmeCoversHelp() async throws {
            let readme = try String(contentsOfFile: Self.readme, encoding: .utf8)
            var undocumented: [String] = []
            var withoutExamples: [String] = []
            for command in Self.commands where !command.isEmpty {
                let name = "segsync " + command.joined(separator: " ")
                if !readme.contains(name) { undocumented.append(name) }
                let text = try await Self.help(command)
                let flags = Set(text.matches(of: /--[a-z][a-z0-9-]+/).map { String($0.output) }).subtracting(["--help", "--version"])
                undocumented += flags.filter { !readme.contains($0) }.sorted().map { "\($0) of \(name)" }
                undocumented += Help.variables.filter { text.contains($0) && !readme.contains($0) }.map { "\($0) in \(name)" }
                if !text.contains("Examples:") { withoutExamples.append(name) }
            }
            #expect(undocumented.isEmpty, "the README does not document: \(undocumented.joined(separator: ", "))")
            #expect(withoutExamples.isEmpty, "no examples in --help of: \(withoutExamples.joined(separator: ", "))")
        }
    }

    enum Help {
        static let variables = ["FULLSTORY_API_KEY", "FULLSTORY_API_URL", "SEGSYNC_DATABASE_URL", "SEGSYNC_DEBUG", "NO_COLOR",
                                "CLICOLOR_FORCE", "COLUMNS", "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS"]
    }
}
