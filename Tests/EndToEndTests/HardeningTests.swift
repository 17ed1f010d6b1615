import Foundation
import SegSync
import Testing
import TestSupport

extension EndToEnd {
    /// Regressions found by review and by a new user: each test failed before its fix. The
    /// built `segsync` against the emulator process, as a user runs them.
    @Suite(.serialized) struct HardeningTests {
        static let now = ApplyTests.now
        static let manifest = ApplyTests.manifest

        func apply(_ folder: TemporaryFolder, _ emulator: EmulatorProcess, _ extra: [String] = [],
                   environment: [String: String] = [:]) async throws -> CLI.Result {
            try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.1"] + extra, in: folder.path,
                        environment: emulator.environment.merging(environment) { $1 })
        }

        func state(_ folder: TemporaryFolder) async throws -> State {
            try await CLI.state(folder.path)
        }

        func run(_ tool: String, _ arguments: String...) async throws {
            #expect(try await CLI.system(tool, arguments) == 0, "\(tool) \(arguments)")
        }

        @Test("a hostile Retry-After is capped and reported, never a crash")
        func hostileRetryAfter() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, [
                "--operation-seconds", "0.2", "--rate-429", "1", "--max-faults", "1", "--retry-after", "99999999999999999999",
            ])
            let refused = try await apply(folder, emulator)
            #expect(refused.status == 1, "\(refused.stdout)\(refused.stderr)")
            #expect(refused.stderr.contains("kept answering 'too many requests' (it asked to wait 3600 s)"))
            #expect(emulator.creates == 0)
            // The server's mood passed: the next run converges.
            let converged = try await apply(folder, emulator)
            #expect(converged.status == 0, "\(converged.stdout)\(converged.stderr)")
            #expect(emulator.creates == 7)
        }

        @Test("Ctrl-C while creates are in flight keeps every id the server handed out")
        func interruptDuringCreates() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", """
                version: 1
                exports:
                  - name: daily
                    segment: everyone
                    type: individuals
                    window: { every: 1d, last: 12d }
                """)
            // Every create takes 1.5 s to answer, with the export already made on the server.
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "30", "--create-latency", "1.5"])
            let run = try CLI.start(["apply", "--now", Self.now, "--max-in-flight", "4", "--poll-interval", "0.2"],
                                    in: folder.path, environment: emulator.environment)
            // The emulator logs each create as it arrives; interrupt once all four are in and
            // none has been answered.
            #expect(await waitUntil { emulator.all("createExport").filter { $0.contains("answer-delayed") }.count == 4 })
            kill(run.process.processIdentifier, SIGINT)
            let out = String(decoding: await CLI.Drain(run.stdout.fileHandleForReading).end(), as: UTF8.self)
            _ = await run.exit()
            #expect(run.process.terminationStatus == 130, "\(out)")
            // The server answers the four creates it received, whether or not anyone listens.
            #expect(await waitUntil { emulator.creates >= 4 })
            let ids = try await state(folder).partitions.values.compactMap(\.operationId)
            #expect(emulator.creates == 4)
            #expect(ids.count == emulator.creates, "the server made \(emulator.creates) exports, state kept \(ids.count) ids")
            let plan = try await CLI.run(["plan", "--offline", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(plan.stdout.contains("Plan: 8 to create, 4 to resume"), "\(plan.stdout)")
        }

        @Test("an operation id is on disk before the operation is first polled")
        func idDurableBeforePolling() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "30"])
            let run = try CLI.start(["apply", "--now", Self.now, "--poll-interval", "0.05", "--max-in-flight", "1"],
                                    in: folder.path, environment: emulator.environment)
            // The first poll is the first thing after a create; kill without warning then.
            #expect(await waitUntil { !emulator.all("getOperation").isEmpty })
            kill(run.process.processIdentifier, SIGKILL)
            _ = await run.exit()
            #expect(emulator.creates >= 1)
            let ids = try await state(folder).partitions.values.compactMap(\.operationId)
            #expect(ids.count == emulator.creates, "the server made \(emulator.creates) exports, state kept \(ids.count) ids")
        }

        @Test("apply --checksum repairs a file changed behind segsync's back; a saved --checksum plan applies")
        func applyChecksum() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            await #expect(try apply(folder, emulator).status == 0)
            // One byte changed, size and modification time kept: only hashing can tell.
            let path = folder.path + "/exports/everyone-daily/2026-11-26.json"
            func flipByte(at offset: (Int) -> Int) async throws {
                try await run("/bin/cp", "-p", path, folder.path + "/mtime-reference")
                var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                bytes[offset(bytes.count)] ^= 0x01
                try bytes.write(to: URL(fileURLWithPath: path))
                try await run("/usr/bin/touch", "-r", folder.path + "/mtime-reference", path)
            }
            try await flipByte { $0 / 2 }

            let quick = try await CLI.run(["plan", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(quick.stdout.hasPrefix("No changes"))
            let saved = try await CLI.run(["plan", "--checksum", "--now", Self.now, "--out", "p.json"], in: folder.path,
                                    environment: emulator.environment)
            #expect(saved.stdout.contains("! repair    everyone-daily 2026-11-26   checksum mismatch"))
            let applied = try await CLI.run(["apply", "p.json", "--poll-interval", "0.1"], in: folder.path, environment: emulator.environment)
            #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0)

            // And without a saved plan.
            try await flipByte { _ in 0 }
            let repaired = try await apply(folder, emulator, ["--checksum"])
            #expect(repaired.status == 0, "\(repaired.stdout)\(repaired.stderr)")
            #expect(repaired.stdout.contains("! repair"))
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0)
            #expect(emulator.creates == 7)
            let misuse = try await CLI.run(["apply", "p.json", "--checksum"], in: folder.path, environment: emulator.environment)
            #expect(misuse.status == 64)
        }

        @Test("a plan saved while operations run still applies after they finish")
        func savedPlanAfterOperationsFinish() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            // Long enough that the run's first polls find them running on a loaded machine.
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "5"])
            let started = try await apply(folder, emulator, ["--max-wait", "0", "--target", "everyone-daily"])
            #expect(started.status == 3, "\(started.stdout)\(started.stderr)")
            // Plan (refreshing from the API) until the operations are done.
            var saved = CLI.Result(status: -1, stdout: "", stderr: "")
            // Under a loaded machine a refresh may time out and show the recorded state for a
            // while; the last plan is in the message if the operations never show as done.
            let done = await waitUntil(timeout: 120) {
                saved = (try? await CLI.run(["plan", "--now", Self.now, "--target", "everyone-daily", "--out", "plan.json"],
                                      in: folder.path, environment: emulator.environment)) ?? saved
                return saved.stdout.contains("3 to download")
            }
            #expect(done, "the last plan: \(saved.stdout)\(saved.stderr)")
            let applied = try await CLI.run(["apply", "plan.json", "--poll-interval", "0.1"], in: folder.path, environment: emulator.environment)
            #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
            #expect(emulator.creates == 3)
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0)
        }

        @Test("a replace whose exports fail leaves the old files recorded; the refusal is said once per export")
        func failedReplaceKeepsFiles() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            await #expect(try apply(folder, emulator).status == 0)
            let lockfile = try #require(folder.read("segsync.lock"))
            // The seed emulator refuses the production dialect's requests.
            try folder.write("segsync.yaml", "version: 1\napi: { dialect: fullstory }\n" + Self.manifest.dropFirst("version: 1\n".count))
            let failed = try await apply(folder, emulator)
            #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
            #expect(failed.stdout.contains("± replace"))
            let summary = try #require(failed.stdout.components(separatedBy: "Failed:\n").last)
            #expect(summary.components(separatedBy: "Check that api.dialect (fullstory) is the one the endpoint speaks").count == 3, "\(summary)")
            #expect(summary.contains("checkout-events 4 partitions (2026-11-26T18:00Z … 2026-11-27T12:00Z)"))
            let verify = try await CLI.run(["verify"], in: folder.path)
            #expect(verify.status == 0, "\(verify.stdout)")
            #expect(!verify.stdout.contains("not written by segsync"))
            #expect(folder.read("segsync.lock") == lockfile)
        }

        @Test("files record the endpoint that served them; another data source shows in plan")
        func dataSourceRecorded() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)  // names production (the default endpoint)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            await #expect(try apply(folder, emulator).status == 0)
            let lockfile = try Lockfile.load(path: folder.path + "/segsync.lock")
            #expect(lockfile.entries.allSatisfy { $0.source == emulator.url })
            let same = try await CLI.run(["plan", "--offline", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(same.stdout.hasPrefix("No changes"))
            // Without FULLSTORY_API_URL the manifest's production endpoint is in force.
            let production = try await CLI.run(["plan", "--offline", "--now", Self.now], in: folder.path)
            #expect(production.stdout.contains("data source changed \(emulator.url) → https://api.fullstory.com"), "\(production.stdout)")
            #expect(production.stdout.contains("7 to replace"))
        }

        @Test("plan against an endpoint that went away warns once and shows the last known state")
        func planUnreachable() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "600"])
            await #expect(try apply(folder, emulator, ["--max-wait", "0"]).status == 3)
            let environment = emulator.environment
            await emulator.stop()
            let plan = try await CLI.run(["plan", "--now", Self.now], in: folder.path, environment: environment)
            #expect(plan.status == 0, "\(plan.stderr)")
            #expect(plan.stderr.components(separatedBy: "warning:").count == 2, "\(plan.stderr)")
            #expect(plan.stderr.contains("could not reach the API"))
            #expect(plan.stdout.contains("7 to resume"))
        }

        @Test("help names the environment it reads and shows examples")
        func helpNamesEnvironment() async throws {
            let folder = try TemporaryFolder()
            let root = try await CLI.run(["--help"], in: folder.path)
            for variable in ["FULLSTORY_API_KEY", "FULLSTORY_API_URL", "SEGSYNC_DEBUG", "GITHUB_STEP_SUMMARY"] {
                #expect(root.stdout.contains(variable), "segsync --help: \(variable)")
            }
            let apply = try await CLI.run(["apply", "--help"], in: folder.path)
            #expect(apply.stdout.contains("FULLSTORY_API_URL") && apply.stdout.contains("Examples:") && apply.stdout.contains("--checksum"))
            let plan = try await CLI.run(["plan", "--help"], in: folder.path)
            #expect(plan.stdout.contains("FULLSTORY_API_KEY") && plan.stdout.contains("Examples:"))
        }

        @Test("exit statuses are the documented ones")
        func exitStatuses() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            #expect(try await CLI.run(["plan", "--bogus"], in: folder.path).status == 64)
            #expect(try await CLI.run(["plan", "--now", "yesterday"], in: folder.path).status == 64)
            #expect(try await CLI.run(["apply", "--parallelism", "0"], in: folder.path).status == 64)
            #expect(try await CLI.run(["validate"], in: folder.path).status == 0)
            try folder.write("bad.yaml", "version: 1\nexports: []\nfromat: csv\n")
            #expect(try await CLI.run(["validate", "-f", "bad.yaml"], in: folder.path).status == 1)
            #expect(try await CLI.run(["plan", "--offline", "--detailed-exitcode", "--now", Self.now], in: folder.path).status == 2)
        }
    }
}
