import Foundation
import SegSync
import Testing
import TestSupport

extension EndToEnd {
    /// GitHub Actions: job summaries (`GITHUB_STEP_SUMMARY`) and annotations (`GITHUB_ACTIONS`).
    @Suite(.serialized) struct GitHubTests {
        static let now = ApplyTests.now

        @Test("plan and apply append a job summary, also when nothing changed; none without the variable")
        func summaries() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", ApplyTests.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            let summary = folder.path + "/summary.md"
            let environment = emulator.environment.merging(["GITHUB_STEP_SUMMARY": summary]) { $1 }
            let plan = try await CLI.run(["plan", "--now", Self.now], in: folder.path, environment: environment)
            #expect(plan.status == 0)
            let planned = try #require(folder.read("summary.md"))
            #expect(planned.contains("### segsync plan — `segsync.yaml`"))
            #expect(planned.contains("| create | 7 |"))
            #expect(planned.contains("+ create    checkout-events 2026-11-26T18:00Z"))

            let apply = try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.1"], in: folder.path, environment: environment)
            #expect(apply.status == 0)
            #expect(folder.read("summary.md")?.contains("### segsync apply — `segsync.yaml`") == true)
            #expect(folder.read("summary.md")?.contains("| finished now | 7 |") == true)

            try FileManager.default.removeItem(atPath: summary)
            _ = try await CLI.run(["plan", "--now", Self.now], in: folder.path, environment: environment)
            _ = try await CLI.run(["apply", "--now", Self.now], in: folder.path, environment: environment)
            let quiet = try #require(folder.read("summary.md"))
            #expect(quiet.components(separatedBy: "No changes: 7 partitions up to date.").count == 3, "\(quiet)")

            // Without the variable nothing is written anywhere.
            try FileManager.default.removeItem(atPath: summary)
            _ = try await CLI.run(["plan", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(!folder.exists("summary.md"))
        }

        @Test("with GITHUB_ACTIONS=true a failed partition is an ::error and a warning a ::warning; without it, neither")
        func annotations() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", """
                version: 1
                exports:
                  - name: ghost
                    segment: no_such_segment
                    type: events
                    window: { every: 1d, last: 1d, settle: 24h }
                  - name: later
                    segment: everyone
                    type: events
                    window: { every: 1d, start: 2030-01-01 }
                """)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            let annotated = try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.1"], in: folder.path,
                                        environment: emulator.environment.merging(["GITHUB_ACTIONS": "true"]) { $1 })
            #expect(annotated.status == 1)
            #expect(annotated.stderr.contains("::error title=segsync%3A ghost 2026-11-26::"), "\(annotated.stderr)")
            #expect(annotated.stderr.contains("::warning file=segsync.yaml,line=7,col=5::export"), "\(annotated.stderr)")
            #expect(annotated.stderr.contains("export 'later' starts at 2030-01-01T00:00:00Z, after now"))
            let plain = try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.1"], in: folder.path, environment: emulator.environment)
            #expect(!plain.stderr.contains("::error") && !plain.stderr.contains("::warning") && !plain.stdout.contains("::"))
        }

        @Test("with GITHUB_ACTIONS=true every manifest error is an ::error at its line and column; notes are no annotations")
        func manifestErrors() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", """
                version: 1
                exports:
                  - name: a
                    segment: everyone
                    type: event
                    fromat: csv
                    window: { every: 1d, last: 2d }
                """)
            let run = try await CLI.run(["validate"], in: folder.path, environment: ["GITHUB_ACTIONS": "true"])
            #expect(run.status == 1)
            #expect(run.stderr.contains("segsync.yaml:5:11: error: "), "\(run.stderr)")
            #expect(run.stderr.contains("::error file=segsync.yaml,line=5,col=11::"), "\(run.stderr)")
            #expect(run.stderr.contains("::error file=segsync.yaml,line=6,col=5::unknown key 'fromat' (did you mean 'format'?)"), "\(run.stderr)")
            #expect(run.stderr.contains("2 errors found; nothing was changed."))
        }
    }
}
