import Foundation
import SegSync
import SegSyncVocabulary
import Testing
import TestSupport

extension EndToEnd {
    /// `window.final`: provisional partitions exported once more when their data is final,
    /// against an emulator with late data whose clock stands at the run's `--now`.
    @Suite(.serialized, .timeLimit(.minutes(10))) struct FinalityTests {
        /// Hourly from midnight; wanted 2 h after a partition ends, final 6 h after.
        static func manifest(final: String = "6h") -> String {
            """
            version: 1
            exports:
              - name: checkout
                segment: checkout_abandoners
                type: events
                format: csv
                window: { every: 1h, start: 2026-11-27T00:00:00Z, settle: 2h, final: \(final) }
            """
        }

        /// The first run's instant: partitions 00:00–05:00 are wanted; 02:00–05:00 end
        /// less than 6 h before it, so their exports are provisional.
        static let first = "2026-11-27T08:00:00Z"
        /// The second: 02:00–05:00 are final now, and 06:00–09:00 wanted.
        static let second = "2026-11-27T12:00:00Z"

        /// An emulator whose clock starts at `now`, with 30% of the rows up to 3 h late: at
        /// 08:00 the rows of 02:00–04:00 are all in (a 3 h delay at most), and some of
        /// 05:00's may not be.
        static func emulator(_ folder: TemporaryFolder, at now: String, port: Int = 0, operationSeconds: String = "0.2") async throws -> EmulatorProcess {
            try await EmulatorProcess(folder: folder, ["--operation-seconds", operationSeconds, "--late-rate", "0.3", "--late-hours", "3",
                                                       "--clock-start", now], port: port)
        }

        func apply(_ folder: TemporaryFolder, _ emulator: EmulatorProcess, now: String, _ extra: [String] = []) async throws -> CLI.Result {
            try await CLI.run(["apply", "--now", now, "--poll-interval", "0.1"] + extra, in: folder.path, environment: emulator.environment)
        }

        static func document(_ result: CLI.Result) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)\(result.stderr)")
        }

        @Test("late data: a later --now past final exports the provisional partitions once more, replaces those whose rows changed, keeps the others byte for byte, and never exports them again")
        func finalizes() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest())
            var emulator = try await Self.emulator(folder, at: Self.first)
            let first = try await apply(folder, emulator, now: Self.first)
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            #expect(emulator.creates == 6)
            let lock = try Lockfile.load(path: folder.path + "/segsync.lock")
            let provisional = Set(lock.entries.filter { $0.provisional != nil }.map(\.path))
            #expect(provisional == Set(["02", "03", "04", "05"].map { "checkout/2026-11-27T\($0)-00Z.csv.gz" }))
            #expect(lock.entries.allSatisfy { $0.provisional == nil || ($0.provisional?.exported == Timestamp.parse(Self.first) && $0.provisional?.contentSHA256?.count == 64) })
            var before: [String: Data] = [:]
            for path in provisional { before[path] = try #require(FileManager.default.contents(atPath: folder.path + "/exports/" + path)) }
            let status = try await CLI.run(["status", "--now", Self.first, "--no-color"], in: folder.path, environment: emulator.environment)
            #expect(status.stdout.contains("6 of 6 partitions done (4 provisional, exported again once final)"), "\(status.stdout)")
            #expect(status.stdout.contains("██▄▄▄▄"), "\(status.stdout)")

            // Later the same morning: nothing is final yet, nothing is exported again.
            let early = try await CLI.run(["plan", "--now", "2026-11-27T08:30:00Z"], in: folder.path, environment: emulator.environment)
            #expect(!early.stdout.contains("finalize"), "\(early.stdout)")

            // Past `end + final`, with every late row in by now.
            let port = emulator.port
            await emulator.stop()
            emulator = try await Self.emulator(folder, at: Self.second, port: port)
            let plan = try await CLI.run(["plan", "--now", Self.second], in: folder.path, environment: emulator.environment)
            #expect(plan.stdout.contains("⟳ finalize  checkout 2026-11-27T02:00Z   provisional, exported 4h ago"), "\(plan.stdout)")
            #expect(plan.stdout.contains("Plan: 4 to create, 0 to resume, 0 to download, 0 to repair, 0 to replace, 0 to prune, 4 to finalize; 2 up to date."), "\(plan.stdout)")
            let second = try await apply(folder, emulator, now: Self.second, ["--json"])
            #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
            let document = try Self.document(second)
            #expect(document["finalized"] as? Int == 4)
            #expect(document["exports_created"] as? Int == 8, "4 new partitions and one more export for each provisional one")
            let partitions = try #require(document["partitions"] as? [[String: Any]])
            let finalized = partitions.filter { $0["action"] as? String == "finalize" }
            #expect(finalized.count == 4)
            let changed = Set(finalized.filter { $0["changed"] as? Bool == true }.compactMap { $0["path"] as? String })
            let unchanged = Set(finalized.filter { $0["changed"] as? Bool == false }.compactMap { $0["path"] as? String })
            #expect(document["finalized_changed"] as? Int == changed.count)
            #expect(changed.count + unchanged.count == 4)
            #expect(changed == ["checkout/2026-11-27T05-00Z.csv.gz"], "only 05:00 had rows still to come at 08:00")
            print("finality: 4 provisional partitions finalized, \(changed.count) changed (\(changed.sorted().joined(separator: ", "))), \(unchanged.count) unchanged; creates \(emulator.creates) for 10 partitions")
            let after = try Lockfile.load(path: folder.path + "/segsync.lock")
            for path in unchanged {
                #expect(FileManager.default.contents(atPath: folder.path + "/exports/" + path) == before[path], "\(path) kept byte for byte")
                #expect(after.entries.first { $0.path == path }?.sha256 == lock.entries.first { $0.path == path }?.sha256)
            }
            for path in changed {
                let now = try #require(FileManager.default.contents(atPath: folder.path + "/exports/" + path))
                #expect(now != before[path], "\(path) replaced")
                // The late rows arrived: more rows than the provisional file had.
                try before[path]!.write(to: URL(fileURLWithPath: folder.path + "/before.gz"))
                #expect(try await CLI.system("/usr/bin/env", ["sh", "-c", "test $(gzip -dc 'exports/\(path)' | wc -l) -gt $(gzip -dc before.gz | wc -l)"],
                                             in: folder.path) == 0, "\(path) has more rows")
            }
            // The finalized entries are final now; 06:00–09:00, exported at 12:00, are provisional.
            #expect(Set(after.entries.filter { $0.provisional != nil }.map(\.path)) == Set(["06", "07", "08", "09"].map { "checkout/2026-11-27T\($0)-00Z.csv.gz" }))
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0)
            #expect(try await CLI.system("/usr/bin/env", ["sha256sum", "--quiet", "-c", "SHA256SUMS"], in: folder.path + "/exports") == 0)

            // Run after run at the same instant: no more exports.
            let again = try await apply(folder, emulator, now: Self.second)
            #expect(again.stdout == "No changes: 10 partitions up to date.\n", "\(again.stdout)")
            #expect(emulator.creates == 14)
            let show = try await CLI.run(["state", "show", "checkout@2026-11-27T06:00Z"], in: folder.path)
            #expect(show.stdout.contains("final") && show.stdout.contains("provisional"), "\(show.stdout)")
        }

        @Test("final equal to settle (the default) makes no extra call")
        func finalEqualsSettle() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest(final: "2h"))
            var emulator = try await Self.emulator(folder, at: Self.first)
            #expect(try await apply(folder, emulator, now: Self.first).status == 0)
            #expect(try Lockfile.load(path: folder.path + "/segsync.lock").entries.allSatisfy { $0.provisional == nil })
            let port = emulator.port
            await emulator.stop()
            emulator = try await Self.emulator(folder, at: Self.second, port: port)
            let second = try await apply(folder, emulator, now: Self.second)
            #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
            #expect(!second.stdout.contains("finaliz"), "\(second.stdout)")
            #expect(emulator.creates == 10, "6 then 4 new partitions, none exported twice")
        }

        @Test("killed (SIGKILL) while the final exports run, the next apply resumes them: no third export")
        func killedWhileFinalizing() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest())
            var emulator = try await Self.emulator(folder, at: Self.first)
            #expect(try await apply(folder, emulator, now: Self.first).status == 0)
            let port = emulator.port
            await emulator.stop()
            // Slow exports, so the kill lands while they run.
            emulator = try await Self.emulator(folder, at: Self.second, port: port, operationSeconds: "30")
            let running = try CLI.start(["apply", "--now", Self.second, "--poll-interval", "0.2"], in: folder.path, environment: emulator.environment)
            // Every create answered and its id committed: state shows all 8 operations requested.
            let committed = await waitUntil {
                guard emulator.creates == 14, let state = try? await CLI.state(folder.path) else { return false }
                return state.partitions.values.filter { $0.phase == .requested || $0.phase == .running }.count == 8
            }
            #expect(committed, "the second run's creates were not all recorded")
            kill(running.process.processIdentifier, SIGKILL)
            _ = await running.exit()
            let finalizing = try await CLI.state(folder.path).partitions.values.filter { $0.output != nil && $0.phase != .downloaded }
            #expect(finalizing.count == 4, "the provisional files stay recorded while their final exports run")

            await emulator.stop()
            emulator = try await Self.emulator(folder, at: "2026-11-27T12:01:00Z", port: port)
            let resumed = try await apply(folder, emulator, now: Self.second, ["--json"])
            #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
            let document = try Self.document(resumed)
            #expect(document["exports_created"] as? Int == 0, "resumed by id")
            #expect(document["finalized"] as? Int == 4)
            #expect(emulator.creates == 14, "6, then 4 new and 4 final exports: no third export of any partition")
            #expect(try await apply(folder, emulator, now: Self.second).stdout == "No changes: 10 partitions up to date.\n")
        }

        @Test("final shorter than settle is an error at its position")
        func finalBeforeSettle() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest(final: "1h"))
            let result = try await CLI.run(["validate"], in: folder.path)
            #expect(result.status != 0)
            #expect(result.stderr.contains("segsync.yaml:7:"), "\(result.stderr)")
            #expect(result.stderr.contains("final: 1h is shorter than settle: 2h"), "\(result.stderr)")
        }
    }
}
