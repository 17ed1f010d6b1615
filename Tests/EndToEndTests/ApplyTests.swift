import Foundation
import SegSync
import SegSyncCLI
import SegSyncVocabulary
import Testing
import TestSupport

extension EndToEnd {
    /// `segsync apply` end to end: commands in-process (or the built executable) against the emulator process.
    @Suite(.serialized) struct ApplyTests {
        static let now = "2026-11-28T00:00:00Z"
        static let manifest = "version: 1\n" + exports
        /// The manifest's exports: four partitions of `checkout-events`, three of `everyone-daily`.
        static let exports = """
            exports:
              - name: checkout-events
                segment: checkout_abandoners
                type: events
                format: csv
                window: { every: 6h, last: 1d, settle: 2h }
              - name: everyone-daily
                segment: everyone
                type: individuals
                decompress: true
                window: { every: 1d, last: 3d, settle: 24h }
            """

        func apply(_ folder: TemporaryFolder, _ emulator: EmulatorProcess, _ extra: [String] = [], now: String = now) async throws -> CLI.Result {
            try await CLI.run(["apply", "--now", now, "--poll-interval", "0.1"] + extra, in: folder.path, environment: emulator.environment)
        }

        func state(_ folder: TemporaryFolder) async throws -> State {
            try await CLI.state(folder.path)
        }

        @Test("a fresh folder converges; verify and sha256sum -c agree; a second run creates nothing")
        func converges() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.3"])
            let first = try await apply(folder, emulator, now: "2026-11-27T00:00:00Z")
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            #expect(emulator.creates == 7)
            #expect(first.stdout.contains("Apply: 7 done, 0 failed."))
            #expect(folder.list("exports").filter { $0.contains("/") }.count == 7)
            #expect(folder.exists("exports/SHA256SUMS"))

            let verify = try await CLI.run(["verify"], in: folder.path)
            #expect(verify.status == 0, "\(verify.stdout)")
            #expect(try await CLI.system("/usr/bin/env", ["sha256sum", "--quiet", "-c", "SHA256SUMS"], in: folder.path + "/exports") == 0)
            let lock = try Lockfile.load(path: folder.path + "/segsync.lock")
            #expect(lock.entries.count == 7)
            #expect(lock.entries.filter { $0.export == "everyone-daily" }.allSatisfy { $0.path.hasSuffix(".json") })
            // State is a SQLite database beside the manifest, nothing in the JSON of earlier
            // builds. It is committed as changes happen (changes that arrive together share
            // a transaction): the operation ids before the files, so at least twice.
            #expect(folder.exists(".segsync/state.sqlite"))
            #expect(!folder.exists(".segsync/state.json"))
            await #expect(try state(folder).serial >= 2)

            let second = try await apply(folder, emulator, now: "2026-11-27T00:00:00Z")
            #expect(second.status == 0)
            #expect(second.stdout == "No changes: 7 partitions up to date.\n")
            #expect(emulator.creates == 7)

            // The window rolls forward a day: exactly the new partitions are created.
            let later = try await apply(folder, emulator, now: "2026-11-28T00:00:00Z")
            #expect(later.status == 0, "\(later.stdout)\(later.stderr)")
            #expect(emulator.creates == 7 + 4 + 1)
            await #expect(try state(folder).partitions.count == 12)
        }

        @Test("a touched file is read once, found intact, and its new modification time recorded: the next scan trusts it again")
        func touchedFileRestamped() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            #expect(try await apply(folder, emulator).status == 0)
            let record = try #require(try await state(folder).partitions.values.first { $0.output != nil })
            let path = folder.path + "/exports/" + record.output!.path
            var times = [timespec(tv_sec: 1_700_000_000, tv_nsec: 0), timespec(tv_sec: 1_700_000_000, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
            let again = try await apply(folder, emulator)
            #expect(again.stdout == "No changes: 7 partitions up to date.\n", "\(again.stdout)\(again.stderr)")
            let restamped = try await state(folder).partitions[record.key.description]
            #expect(restamped?.output?.modified == 1_700_000_000, "\(String(describing: restamped?.output))")
            #expect(restamped?.output?.sha256 == record.output?.sha256)
        }

        @Test("plan shows running operations refreshed from the API; --offline does not ask")
        func planRefresh() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "600"])
            let started = try await apply(folder, emulator, ["--max-wait", "0", "--target", "everyone-daily"])
            #expect(started.status == 3, "\(started.stdout)\(started.stderr)")
            #expect(started.stdout.contains("3 still running"))
            let gets = emulator.count("getOperation")
            let plan = try await CLI.run(["plan", "--now", Self.now, "--target", "everyone-daily"], in: folder.path, environment: emulator.environment)
            #expect(plan.status == 0)
            #expect(plan.stdout.contains("~ resume"))
            #expect(plan.stdout.contains("(PENDING") || plan.stdout.contains("(RUNNING"))
            #expect(emulator.count("getOperation") == gets + 3)
            #expect(emulator.creates == 3)
            _ = try await CLI.run(["plan", "--offline", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(emulator.count("getOperation") == gets + 3)
            let status = try await CLI.run(["status", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(status.stdout.contains("everyone-daily          3        0        3        0        0        0"))
        }

        @Test("an apply killed with SIGKILL is resumed by operation id, even by a restarted emulator")
        func resumeAfterKill() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            // Operations take 4 s (their length is part of their id); the kill comes sooner.
            var emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "4"])
            let run = try CLI.start(["apply", "--now", Self.now, "--poll-interval", "0.2"], in: folder.path, environment: emulator.environment)
            // Wait until every partition's operation id is on disk, then kill without warning.
            var recorded: [String] = []
            _ = await waitUntil {
                recorded = await (try? state(folder))?.partitions.values.compactMap(\.operationId) ?? []
                return recorded.count == 7
            }
            kill(run.process.processIdentifier, SIGKILL)
            _ = await run.exit()
            #expect(recorded.count == 7)
            #expect(emulator.creates == 7)

            // A new emulator process (same key, seed and endpoint) still knows the operations.
            await emulator.stop()
            emulator = try await EmulatorProcess(folder: folder, [], logName: "requests-2.jsonl", port: emulator.port)
            let resumed = try await apply(folder, emulator)
            #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
            #expect(resumed.stdout.contains("7 to resume"))
            #expect(emulator.creates == 0)
            let final = try await state(folder)
            #expect(Set(final.partitions.values.compactMap(\.operationId)) == Set(recorded))
            #expect(final.partitions.values.allSatisfy { $0.phase == .downloaded })
        }

        @Test("expired download links are fetched again")
        func expiredLinks() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2", "--rate-expired-link", "1", "--max-faults", "3"])
            // Relinks are routine, shown with -v only.
            let result = try await apply(folder, emulator, ["--max-in-flight", "1", "-v"])
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.components(separatedBy: "the download link expired; fetching a fresh one").count == 4)
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0)
            #expect(emulator.creates == 7)
        }

        @Test("FAILED exports are exported again up to the bound, then the partition is reported")
        func failedOperations() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let recovering = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2", "--rate-fail", "1", "--max-faults", "2"])
            let result = try await apply(folder, recovering, ["--max-in-flight", "1"])
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(recovering.creates == 9)
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0)

            let other = try TemporaryFolder()
            try other.write("segsync.yaml", Self.manifest)
            let failing = try await EmulatorProcess(folder: other, ["--operation-seconds", "0.2", "--rate-fail", "1", "--max-faults", "3"])
            let gaveUp = try await apply(other, failing, ["--max-in-flight", "1"])
            #expect(gaveUp.status == 1)
            #expect(gaveUp.stdout.contains("gave up after 3 exports in this run"))
            #expect(gaveUp.stdout.contains("Apply: 6 done, 1 failed."))
            #expect(failing.creates == 9)

            // The next runs do not spend creates on it until asked to.
            let skipped = try await apply(other, failing)
            #expect(skipped.status == 1)
            #expect(skipped.stdout.contains("1 partition failed 3 exports and is skipped: checkout-events 2026-11-26T18:00Z"))
            #expect(skipped.stdout.contains("run apply --retry-failed"))
            // Given up is not converged: plan says so, and --detailed-exitcode exits 2.
            let notConverged = try await CLI.run(["plan", "--offline", "--detailed-exitcode", "--now", Self.now], in: other.path,
                                           environment: failing.environment)
            #expect(notConverged.status == 2)
            #expect(notConverged.stdout.contains("Not converged: 1 partition given up"))
            #expect(failing.creates == 9)
            let retried = try await apply(other, failing, ["--retry-failed"])
            #expect(retried.status == 0, "\(retried.stdout)\(retried.stderr)")
            #expect(failing.creates == 10)
            #expect(try await CLI.run(["verify"], in: other.path).status == 0)
        }

        @Test("a time zone change replaces partitions that share a file name, and prune keeps the new files")
        func timeZoneChange() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            await #expect(try apply(folder, emulator).status == 0)
            try folder.write("segsync.yaml", Self.manifest.replacingOccurrences(of: "decompress: true", with: "decompress: true\n    timezone: America/New_York"))
            let changed = try await apply(folder, emulator, ["--prune"])
            #expect(changed.status == 0, "\(changed.stdout)\(changed.stderr)")
            // New York's settled days end a day earlier: 23–25 are wanted, the old 26 is pruned;
            // 24 and 25 are replaced in place (same names), never deleted.
            #expect(changed.stdout.contains("pruned     everyone-daily 2026-11-26"))
            #expect(changed.stdout.components(separatedBy: "pruned ").count == 2)
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0)
            #expect(folder.list("exports/everyone-daily") == ["2026-11-23.json", "2026-11-24.json", "2026-11-25.json"])
            let again = try await apply(folder, emulator, ["--prune"])
            #expect(again.stdout.hasPrefix("No changes: 7 partitions up to date."))
            await #expect(try state(folder).partitions.count == 7)
        }

        @Test("a deleted segsync.lock is rebuilt from state by the next apply")
        func lockfileRebuilt() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            await #expect(try apply(folder, emulator).status == 0)
            let original = try #require(folder.read("segsync.lock"))
            try FileManager.default.removeItem(atPath: folder.path + "/segsync.lock")
            try FileManager.default.removeItem(atPath: folder.path + "/exports/SHA256SUMS")
            #expect(try await CLI.run(["verify"], in: folder.path).status == 1)
            let rebuilt = try await apply(folder, emulator)
            #expect(rebuilt.status == 0)
            #expect(folder.read("segsync.lock") == original)
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0)
            #expect(emulator.creates == 7)
        }

        @Test("commands open state through their context: apply and plan converge on an in-memory store, and no database file appears")
        func inMemoryState() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            let store = MemoryStateStore()
            let inMemory: (inout CommandContext) -> Void = { $0.openStore = { _, _, _, _ in store } }
            let applied = await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.1"], in: folder.path,
                                        environment: emulator.environment, adjust: inMemory)
            #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
            #expect(try await store.load().partitions.count == 7)
            let planned = await CLI.run(["plan", "--now", Self.now], in: folder.path, environment: emulator.environment, adjust: inMemory)
            #expect(planned.stdout.hasPrefix("No changes"), "\(planned.stdout)")
            #expect(!folder.exists(".segsync/state.sqlite"))
            #expect(emulator.creates == 7)
        }

        @Test("a converged folder whose SHA256SUMS is deleted or edited gets it back from a no-op apply")
        func checksumsRewritten() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            await #expect(try apply(folder, emulator).status == 0)
            let original = try #require(folder.read("exports/SHA256SUMS"))
            let lockfile = folder.read("segsync.lock")
            try FileManager.default.removeItem(atPath: folder.path + "/exports/SHA256SUMS")
            let restored = try await apply(folder, emulator)
            #expect(restored.status == 0 && restored.stdout.hasPrefix("No changes"), "\(restored.stdout)\(restored.stderr)")
            #expect(folder.read("exports/SHA256SUMS") == original)
            try folder.write("exports/SHA256SUMS", original + "0000000000000000000000000000000000000000000000000000000000000000  extra.csv\n")
            #expect(try await apply(folder, emulator).status == 0)
            #expect(folder.read("exports/SHA256SUMS") == original)
            #expect(folder.read("segsync.lock") == lockfile)
            #expect(emulator.creates == 7)
        }

        @Test("a partition whose exports keep failing is reported after the bound; the others converge")
        func permanentFailure() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest + """

                  - name: missing-segment
                    segment: no_such_segment
                    type: events
                    window: { every: 1d, last: 1d }
                """)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            let result = try await apply(folder, emulator, ["--prune"])
            #expect(result.status == 1)
            #expect(result.stdout.contains("Failed:\n  missing-segment 2026-11-26: "))
            #expect(result.stdout.contains("no_such_segment"))
            #expect(result.stdout.contains("Apply: 7 done, 1 failed. 7 exports created."))
            await #expect(try state(folder)[PartitionKey(export: "missing-segment", start: Timestamp.parse("2026-11-26T00:00:00Z")!)]?.phase == .failed)
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0)
        }

        @Test("an operation the API no longer knows is exported again")
        func unknownOperation() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "600"])
            _ = try await apply(folder, emulator, ["--max-wait", "0", "--target", "everyone-daily"])
            #expect(emulator.creates == 3)
            // Forge the recorded ids: the API has never heard of these.
            var state = try await state(folder)
            for key in state.partitions.keys { state.partitions[key]?.operationId = "forgotten-\(key.count)" }
            try await CLI.push(state, to: folder.path)
            await emulator.stop()
            let quick = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"], logName: "requests-2.jsonl", port: emulator.port)
            let result = try await apply(folder, quick, ["--target", "everyone-daily"])
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("is unknown to the API; exporting again"))
            #expect(quick.creates == 3)
        }

        @Test("a deleted file and a corrupted file are repaired; a changed format is replaced")
        func repairAndReplace() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            await #expect(try apply(folder, emulator).status == 0)
            let original = try #require(folder.read("exports/everyone-daily/2026-11-26.json"))
            try FileManager.default.removeItem(atPath: folder.path + "/exports/everyone-daily/2026-11-25.json")
            let damaged = String(original.reversed())
            try folder.write("exports/everyone-daily/2026-11-26.json", damaged)

            let plan = try await CLI.run(["plan", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(plan.stdout.contains("! repair    everyone-daily 2026-11-25   file missing"))
            #expect(plan.stdout.contains("! repair    everyone-daily 2026-11-26   checksum mismatch"))
            #expect(try await CLI.run(["verify"], in: folder.path).status == 1)

            let repaired = try await apply(folder, emulator)
            #expect(repaired.status == 0, "\(repaired.stdout)\(repaired.stderr)")
            #expect(folder.read("exports/everyone-daily/2026-11-26.json") == original)
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0)
            #expect(emulator.creates == 7)  // the finished operations served the repairs

            try folder.write("segsync.yaml", Self.manifest.replacingOccurrences(of: "decompress: true", with: "decompress: true\n    format: csv"))
            let replaced = try await apply(folder, emulator)
            #expect(replaced.status == 0, "\(replaced.stdout)\(replaced.stderr)")
            #expect(replaced.stdout.contains("± replace   everyone-daily 2026-11-24   format changed json → csv"))
            #expect(emulator.creates == 10)
            #expect(!folder.exists("exports/everyone-daily/2026-11-24.json"))
            #expect(folder.exists("exports/everyone-daily/2026-11-24.csv"))
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0)
        }

        @Test("prune deletes only recorded outputs no longer declared, and never after errors")
        func prune() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            await #expect(try apply(folder, emulator).status == 0)
            try folder.write("exports/checkout-events/mine.txt", "not segsync's")
            let onlyDaily = """
                version: 1
                exports:
                  - name: everyone-daily
                    segment: everyone
                    type: individuals
                    decompress: true
                    window: { every: 1d, last: 3d, settle: 24h }
                """
            try folder.write("segsync.yaml", onlyDaily + "\n  - { name: broken, segment: no_such_segment, type: events }\n")
            let withError = try await apply(folder, emulator, ["--prune"])
            #expect(withError.status == 1)
            #expect(withError.stdout.contains("skipped    4 prunes: this run had errors"))
            #expect(folder.list("exports/checkout-events").count == 5)

            try folder.write("segsync.yaml", onlyDaily)
            let kept = try await apply(folder, emulator)
            #expect(kept.stdout.contains("4 recorded outputs belong to exports no longer declared and are kept"))
            let pruned = try await apply(folder, emulator, ["--prune"])
            #expect(pruned.status == 0, "\(pruned.stdout)\(pruned.stderr)")
            #expect(folder.list("exports/checkout-events") == ["mine.txt"])
            #expect(try Lockfile.load(path: folder.path + "/segsync.lock").entries.count == 3)
            #expect(try await CLI.run(["verify"], in: folder.path).stdout.contains("unknown  checkout-events/mine.txt"))
        }

        @Test("a second apply on the same folder fails at once with the holder's details")
        func concurrentApplies() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "2"])
            let first = try CLI.start(["apply", "--now", Self.now, "--poll-interval", "0.2"], in: folder.path, environment: emulator.environment)
            #expect(await waitUntil { (folder.read(".segsync/lock") ?? "").contains("segsync apply") })
            let second = try await apply(folder, emulator)
            #expect(second.status == 1)
            #expect(second.stderr.contains("another segsync run has the lock on the SQLite state .segsync/state.sqlite"))
            #expect(second.stderr.contains("held by pid \(first.process.processIdentifier) on "))
            #expect(second.stderr.contains(", 'segsync apply', started "))
            _ = await first.exit()
            #expect(first.process.terminationStatus == 0)
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0)
            #expect(emulator.creates == 7)
        }

        @Test("two identical applies in two folders write byte-identical lockfiles")
        func identicalLockfiles() async throws {
            let a = try TemporaryFolder(), b = try TemporaryFolder()
            let emulator = try await EmulatorProcess(folder: a, ["--operation-seconds", "0.2"])
            for folder in [a, b] {
                try folder.write("segsync.yaml", Self.manifest)
                await #expect(try apply(folder, emulator, ["--parallelism", folder === a ? "1" : "8"]).status == 0)
            }
            let lockA = try #require(a.read("segsync.lock")), lockB = try #require(b.read("segsync.lock"))
            #expect(lockA == lockB)
            #expect(a.read("exports/SHA256SUMS") == b.read("exports/SHA256SUMS"))
        }

        @Test("a saved plan is applied as saved, and refused once the state has moved")
        func savedPlan() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            let saved = try await CLI.run(["plan", "--now", Self.now, "--target", "everyone-daily", "--out", "plan.json"], in: folder.path, environment: emulator.environment)
            #expect(saved.status == 0)
            #expect(saved.stdout.contains("Saved the plan to plan.json"))
            let applied = try await CLI.run(["apply", "plan.json", "--poll-interval", "0.1"], in: folder.path, environment: emulator.environment)
            #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
            #expect(emulator.creates == 3)
            let again = try await CLI.run(["apply", "plan.json"], in: folder.path, environment: emulator.environment)
            #expect(again.status == 1)
            #expect(again.stderr.contains("the saved plan plan.json is stale: the state has changed since"))
            #expect(emulator.creates == 3)
        }

        @Test("a wrong key is one clear error before any export; a future --now is refused")
        func wrongKeyAndFutureNow() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            var environment = emulator.environment
            environment["FULLSTORY_API_KEY"] = "not-the-key"
            let rejected = try await CLI.run(["apply", "--now", Self.now], in: folder.path, environment: environment)
            #expect(rejected.status == 1)
            #expect(rejected.stderr.components(separatedBy: "rejected the API key from FULLSTORY_API_KEY").count == 2)
            #expect(emulator.count("createExport") == 0)
            await #expect(try state(folder).partitions.isEmpty)

            let future = Timestamp.format(Date().addingTimeInterval(86_400 * 3))
            let refused = try await apply(folder, emulator, now: future)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("is in the future"))
            #expect(try await CLI.run(["apply", "--dry-run", "--now", future], in: folder.path, environment: emulator.environment).status == 0)
        }

        @Test("Ctrl-C stops an apply cleanly: exit 130, ids kept, the next run resumes")
        func interrupted() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "6"])
            let run = try CLI.start(["apply", "--now", Self.now, "--poll-interval", "0.2"], in: folder.path, environment: emulator.environment)
            #expect(await waitUntil { ((try? await state(folder))?.partitions.values.compactMap(\.operationId).count ?? 0) == 7 })
            kill(run.process.processIdentifier, SIGINT)
            let out = String(decoding: await CLI.Drain(run.stdout.fileHandleForReading).end(), as: UTF8.self)
            _ = await run.exit()
            #expect(run.process.terminationStatus == 130)
            #expect(out.contains("Interrupted: 0 done, 0 failed, 7 left for the next run"))
            let resumed = try await apply(folder, emulator)
            #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
            #expect(emulator.creates == 7)
        }
    }
}
