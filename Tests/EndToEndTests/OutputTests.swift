import Foundation
import SegSync
import Testing
import TestSupport

extension EndToEnd {
    /// What segsync prints for machines (`--json` everywhere) and for people
    /// (`-q`, `-v`, colour, coverage strips), and `init`, `-f DIR` and `-C DIR`.
    @Suite(.serialized) struct OutputTests {
        static let now = ApplyTests.now

        static func json(_ text: String, _ what: String) throws -> [String: Any] {
            let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
            let document = try #require(object as? [String: Any], "\(what) is not a JSON object: \(text)")
            #expect(document["format_version"] as? Int == 1, "\(what) carries no format_version 1: \(text)")
            return document
        }

        @Test("every --json document parses and carries format_version; --json-events is one JSON line per event, the report last")
        func machineOutput() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", ApplyTests.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.3"])
            let env = emulator.environment

            let events = try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.1", "--target", "everyone-daily", "--json-events"],
                                     in: folder.path, environment: env)
            #expect(events.status == 0, "\(events.stderr)")
            let lines = events.stdout.split(separator: "\n").map(String.init)
            let parsed = try lines.map { try Self.json($0, "a --json-events line") }
            let names = parsed.compactMap { $0["event"] as? String }
            #expect(names.count == lines.count)
            #expect(names.filter { $0 == "created" }.count == 3)
            #expect(names.filter { $0 == "downloaded" }.count == 3)
            #expect(names.contains("polled") && names.contains("downloading"))
            #expect(names.last == "report")
            let downloaded = try #require(parsed.first { $0["event"] as? String == "downloaded" })
            #expect(downloaded["export"] as? String == "everyone-daily")
            #expect((downloaded["sha256"] as? String)?.count == 64)
            #expect(parsed.last?["converged"] as? Bool == true)

            let apply = try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.1", "--json"], in: folder.path, environment: env)
            #expect(apply.status == 0, "\(apply.stderr)")
            let report = try Self.json(apply.stdout, "apply --json")
            #expect(report["done"] as? Int == 4)
            #expect(report["exit_code"] as? Int == 0)
            let partitions = try #require(report["partitions"] as? [[String: Any]])
            #expect(partitions.count == 4)
            #expect(partitions.allSatisfy { $0["outcome"] as? String == "done" && ($0["sha256"] as? String)?.count == 64 })
            #expect(partitions.first?["path"] as? String == "checkout-events/2026-11-26T18-00Z.csv.gz")

            let noChange = try Self.json(try await CLI.run(["apply", "--now", Self.now, "--json"], in: folder.path, environment: env).stdout, "apply --json, no changes")
            #expect(noChange["converged"] as? Bool == true && (noChange["plan"] as? [String: Int])?["up_to_date"] == 7)

            // Files count as done for the endpoint that served them: status is asked about the emulator's.
            let status = try Self.json(try await CLI.run(["status", "--now", Self.now, "--json"], in: folder.path, environment: env).stdout, "status --json")
            let exports = try #require(status["exports"] as? [[String: Any]])
            #expect(exports.map { $0["done"] as? Int } == [4, 3])
            #expect((exports[1]["partitions"] as? [[String: Any]])?.map { $0["status"] as? String } == ["done", "done", "done"])

            let verify = try Self.json(try await CLI.run(["verify", "--json"], in: folder.path).stdout, "verify --json")
            #expect(verify["ok"] as? Bool == true && verify["checked"] as? Int == 7)

            let plan = try Self.json(try await CLI.run(["plan", "--now", Self.now, "--json"], in: folder.path, environment: env).stdout, "plan --json")
            #expect((plan["summary"] as? [String: Int])?["up_to_date"] == 7)

            let list = try Self.json(try await CLI.run(["segments", "list", "--json"], in: folder.path, environment: env).stdout, "segments list --json")
            #expect((list["segments"] as? [[String: Any]])?.contains { $0["id"] as? String == "everyone" } == true)
            let show = try Self.json(try await CLI.run(["segments", "show", "everyone", "--json"], in: folder.path, environment: env).stdout, "segments show --json")
            #expect((show["segment"] as? [String: Any])?["name"] as? String == "Everyone")

            let state = try Self.json(try await CLI.run(["state", "list", "--json"], in: folder.path).stdout, "state list --json")
            #expect((state["partitions"] as? [Any])?.count == 7)
        }

        @Test("verify --sha256sums checks what SHA256SUMS lists, from outside the output folder, as sha256sum -c does inside it")
        func sha256sums() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", ApplyTests.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            #expect(try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.1"], in: folder.path, environment: emulator.environment).status == 0)
            let ok = try await CLI.run(["verify", "--sha256sums"], in: folder.path)
            #expect(ok.status == 0)
            #expect(ok.stdout.contains("OK: 7 files in \(folder.path)/exports match SHA256SUMS."), "\(ok.stdout)")
            // The documented coreutils check, from inside the output folder, agrees.
            #expect(try await CLI.system("/usr/bin/sha256sum", ["--quiet", "-c", "SHA256SUMS"], in: folder.path + "/exports") == 0)

            try folder.write("exports/everyone-daily/2026-11-26.json", "not what was downloaded\n")
            let bad = try await CLI.run(["verify", "--sha256sums", "-q"], in: folder.path)
            #expect(bad.status == 1)
            #expect(bad.stdout.contains("changed  everyone-daily/2026-11-26.json"), "\(bad.stdout)")
            #expect(bad.stdout.contains("FAILED: 1 of 7 listed files missing or changed"))
        }

        @Test("-q prints the final line only, -v adds polls and the API log, and the default is between")
        func verbosity() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", ApplyTests.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.3"])
            let quiet = try await CLI.run(["apply", "-q", "--now", Self.now, "--poll-interval", "0.1", "--target", "checkout-events"],
                                    in: folder.path, environment: emulator.environment)
            #expect(quiet.status == 0)
            #expect(quiet.stdout == "Apply: 4 done, 0 failed. 4 exports created.\n", "\(quiet.stdout)")
            #expect(quiet.stderr.isEmpty, "\(quiet.stderr)")

            let normal = try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.1"], in: folder.path, environment: emulator.environment)
            // Log lines are columns, as wide as the plan's.
            #expect(normal.stdout.contains("+ create    everyone-daily 2026-11-25   individuals json"))
            #expect(normal.stdout.contains("Z downloaded everyone-daily 2026-11-25   everyone-daily/2026-11-25.json (563.7 KiB, sha256 "), "\(normal.stdout)")
            #expect(normal.stdout.contains("Z created    everyone-daily 2026-11-25   op "))
            #expect(!normal.stdout.contains("polled"))
            #expect(normal.stderr.isEmpty, "\(normal.stderr)")

            #expect(try await CLI.run(["state", "rm", "everyone-daily@2026-11-25"], in: folder.path).status == 0)
            let verbose = try await CLI.run(["apply", "-v", "--now", Self.now, "--poll-interval", "0.1"], in: folder.path, environment: emulator.environment)
            #expect(verbose.status == 0)
            #expect(verbose.stdout.contains("polled     everyone-daily 2026-11-25   op "), "\(verbose.stdout)")
            #expect(verbose.stdout.contains(" COMPLETED 100%"))
            #expect(!verbose.stderr.isEmpty, "-v logs the API calls on standard error")
            let debug = try await CLI.run(["plan", "--now", Self.now], in: folder.path, environment: emulator.environment.merging(["SEGSYNC_DEBUG": "1"]) { $1 })
            #expect(debug.status == 0)

            let noChanges = try await CLI.run(["apply", "-q", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(noChanges.stdout == "No changes: 7 partitions up to date.\n", "\(noChanges.stdout)")
            let planQuiet = try await CLI.run(["plan", "-q", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(planQuiet.stdout == "No changes: 7 partitions up to date.\n")
            let contradiction = try await CLI.run(["plan", "-q", "-v"], in: folder.path)
            #expect(contradiction.status == 64 && contradiction.stderr.contains("contradict"))
        }

        @Test("colour only when asked for at a terminal (CLICOLOR_FORCE stands in for one); never with NO_COLOR or --no-color")
        func colour() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", ApplyTests.manifest)
            let escape = "\u{1B}["
            let piped = try await CLI.run(["plan", "--offline", "--now", Self.now], in: folder.path)
            #expect(piped.status == 0 && !piped.stdout.contains(escape) && !piped.stderr.contains(escape))
            let forced = try await CLI.run(["plan", "--offline", "--now", Self.now], in: folder.path, environment: ["CLICOLOR_FORCE": "1"])
            #expect(forced.stdout.contains("\(escape)32m+ create   \(escape)0m"), "\(forced.stdout)")
            let status = try await CLI.run(["status", "--now", Self.now], in: folder.path, environment: ["CLICOLOR_FORCE": "1"])
            #expect(status.stdout.contains("\(escape)33m····\(escape)0m"), "\(status.stdout)")
            for (arguments, environment) in [(["--no-color"], ["CLICOLOR_FORCE": "1"]), ([], ["CLICOLOR_FORCE": "1", "NO_COLOR": "1"])] {
                for command in [["plan", "--offline"], ["status"], ["verify"]] {
                    let result = try await CLI.run(command + arguments + (command[0] == "verify" ? [] : ["--now", Self.now]), in: folder.path, environment: environment)
                    #expect(!result.stdout.contains(escape) && !result.stderr.contains(escape), "\(command) \(arguments) \(environment)")
                }
            }
        }

        @Test("status draws one cell per desired partition, folded to COLUMNS with the partition at each row's start")
        func coverageStrip() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", """
                version: 1
                exports:
                  - name: hourly
                    segment: everyone
                    type: events
                    window: { every: 1h, last: 2d, settle: 1h }
                  - name: daily
                    segment: everyone
                    type: individuals
                    window: { every: 1d, last: 90d, settle: 24h }
                """)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0"])
            #expect(try await CLI.run(["apply", "-q", "--now", Self.now, "--target", "hourly", "--poll-interval", "0.1"], in: folder.path,
                                environment: emulator.environment).status == 0)
            #expect(try await CLI.run(["state", "rm", "hourly@2026-11-26T13:00Z"], in: folder.path).status == 0)
            let status = try await CLI.run(["status", "--now", Self.now], in: folder.path,
                                     environment: emulator.environment.merging(["COLUMNS": "60"]) { $1 })
            let lines = status.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            // The newest 48 settled hours, folded by whole days: 24 per row fit in 60 columns.
            let hourly = lines.drop { $0 != "hourly" }.dropFirst().prefix(2)
            #expect(Array(hourly) == ["  2026-11-25T23:00Z " + String(repeating: "█", count: 14) + "·" + String(repeating: "█", count: 9),
                                      "  2026-11-26T23:00Z " + String(repeating: "█", count: 24)], "\(status.stdout)")
            // Daily cells fold by whole weeks: 42 per row (60 - 13 columns leave 47).
            let daily = Array(lines.drop { $0 != "daily" }.dropFirst().prefix(3))
            #expect(daily.map { $0.prefix(13) } == ["  2026-08-29 ", "  2026-10-10 ", "  2026-11-21 "], "\(status.stdout)")
            #expect(daily.map { $0.dropFirst(13).count } == [42, 42, 6])
            #expect(status.stdout.contains("█ done  ▒ running  ▓ ready  ✗ failed  · missing"))
            #expect(status.stdout.contains("Status: 47 of 138 partitions done, 91 missing."), "\(status.stdout)")
        }

        @Test("init writes a commented manifest that validates and applies; it never overwrites without --force")
        func initialises() async throws {
            let folder = try TemporaryFolder()
            let missing = try await CLI.run(["plan"], in: folder.path)
            #expect(missing.status == 1 && missing.stderr.contains("write a starter one with `segsync init`"), "\(missing.stderr)")

            let written = try await CLI.run(["init", "--endpoint", "emulator", "--segment", "checkout_abandoners"], in: folder.path)
            #expect(written.status == 0, "\(written.stderr)")
            #expect(written.stdout.contains("Wrote segsync.yaml. Next:"))
            let text = try #require(folder.read("segsync.yaml"))
            #expect(text.contains("# segsync manifest") && text.contains("segment: checkout_abandoners") && text.contains("name: checkout-abandoners-daily"))
            let validated = try await CLI.run(["validate"], in: folder.path)
            #expect(validated.stdout == "segsync.yaml: valid, 1 export.\n", "\(validated.stdout)\(validated.stderr)")
            let applied = try await CLI.run(["apply", "-q"], in: folder.path)
            #expect(applied.status == 0 && applied.stdout == "Apply: 30 done, 0 failed. 30 exports created.\n", "\(applied.stdout)\(applied.stderr)")

            let again = try await CLI.run(["init"], in: folder.path)
            #expect(again.status == 1 && again.stderr.contains("segsync.yaml already exists; segsync init does not overwrite it (pass --force"))
            #expect(folder.read("segsync.yaml") == text)
            #expect(try await CLI.run(["init", "--force"], in: folder.path).status == 0)
            #expect(folder.read("segsync.yaml")?.contains("endpoint: https://api.fullstory.com") == true)
            #expect(try await CLI.run(["validate"], in: folder.path).status == 0)

            // -f DIR means DIR/segsync.yaml; -C DIR runs there.
            try FileManager.default.createDirectory(atPath: folder.path + "/pipelines/fs", withIntermediateDirectories: true)
            #expect(try await CLI.run(["init", "-f", "pipelines/fs", "--endpoint", "emulator"], in: folder.path).status == 0)
            #expect(folder.exists("pipelines/fs/segsync.yaml"))
            #expect(try await CLI.run(["validate", "-f", "pipelines/fs"], in: folder.path).stdout == "pipelines/fs/segsync.yaml: valid, 1 export.\n")
            #expect(try await CLI.run(["-C", "pipelines/fs", "validate"], in: folder.path).stdout == "segsync.yaml: valid, 1 export.\n")
            #expect(try await CLI.run(["validate", "-C", "pipelines/fs"], in: folder.path).stdout == "segsync.yaml: valid, 1 export.\n")
            let nowhere = try await CLI.run(["-C", "nowhere", "plan"], in: folder.path)
            #expect(nowhere.status == 64 && nowhere.stderr.contains("-C nowhere: there is no such folder"))
            let bad = try await CLI.run(["init", "--endpoint", "ftp://x", "-f", "other.yaml"], in: folder.path)
            #expect(bad.status == 64 && !folder.exists("other.yaml"))
            // The manifest's endpoint rule: init never writes an endpoint validate would refuse.
            let plain = try await CLI.run(["init", "--endpoint", "http://example.com", "-f", "other.yaml"], in: folder.path)
            #expect(plain.status == 64 && plain.stderr.contains("uses plain http:// to a host that is not this machine"), "\(plain.stderr)")
            let secret = try await CLI.run(["init", "--endpoint", "https://user:hunter2@example.com", "-f", "other.yaml"], in: folder.path)
            #expect(secret.status == 64 && secret.stderr.contains("carries credentials") && !secret.stderr.contains("hunter2"))
            let local = try await CLI.run(["init", "--endpoint", "http://localhost:8080", "-f", "local.yaml"], in: folder.path)
            #expect(local.status == 0)
            #expect(try await CLI.run(["validate", "-f", "local.yaml"], in: folder.path).status == 0)
        }
    }
}
