import Foundation
import SegSync
import Testing
import TestSupport

extension EndToEnd {
    /// `segsync state …`, the import of an earlier build's state, and the lockfile mark.
    @Suite(.serialized, .timeLimit(.minutes(5))) struct StateCLITests {
        static let now = ApplyTests.now

        func converged() async throws -> (TemporaryFolder, EmulatorProcess) {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", ApplyTests.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            let result = try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.1"], in: folder.path, environment: emulator.environment)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            return (folder, emulator)
        }

        @Test("state list, show and rm: rm forgets a partition and the next apply exports exactly it again")
        func listShowRemove() async throws {
            let (folder, emulator) = try await converged()
            let list = try await CLI.run(["state", "list"], in: folder.path)
            #expect(list.status == 0)
            #expect(list.stdout.hasPrefix("PARTITION "))
            #expect(list.stdout.contains("\neveryone-daily@2026-11-26          downloaded  eyJj…"), "\(list.stdout)")
            let json = try await CLI.run(["state", "list", "--json", "--target", "everyone-daily"], in: folder.path)
            let document = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            #expect(document?["format_version"] as? Int == 1)
            #expect((document?["partitions"] as? [[String: Any]])?.map { $0["address"] as? String } == [
                "everyone-daily@2026-11-24", "everyone-daily@2026-11-25", "everyone-daily@2026-11-26"])

            let show = try await CLI.run(["state", "show", "checkout-events@2026-11-27T12:00Z"], in: folder.path)
            #expect(show.stdout.contains("phase            downloaded"), "\(show.stdout)")
            #expect(show.stdout.contains("file             checkout-events/2026-11-27T12-00Z.csv.gz"))
            let unknown = try await CLI.run(["state", "show", "checkout-events@yesterday"], in: folder.path)
            #expect(unknown.status == 1)
            #expect(unknown.stderr.contains("no partition in state is checkout-events@yesterday"))

            let removed = try await CLI.run(["state", "rm", "everyone-daily@2026-11-26"], in: folder.path)
            #expect(removed.status == 0, "\(removed.stderr)")
            #expect(removed.stdout.contains("Forgot 1 partition; the next apply exports it again."))
            #expect(try Lockfile.load(path: folder.path + "/segsync.lock").entries.count == 6)
            let again = try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.1"], in: folder.path, environment: emulator.environment)
            #expect(again.status == 0)
            #expect(again.stdout.contains("Plan: 1 to create"), "\(again.stdout)")
            #expect(emulator.creates == 8)
            #expect(try Lockfile.load(path: folder.path + "/segsync.lock").entries.count == 7)
        }

        @Test("an earlier build's .segsync/state.json is imported once, then renamed aside")
        func legacyImport() async throws {
            let (folder, emulator) = try await converged()
            let pulled = try await CLI.run(["state", "pull"], in: folder.path).stdout
            for name in ["state.sqlite", "state.sqlite-wal", "state.sqlite-shm"] {
                try? FileManager.default.removeItem(atPath: folder.path + "/.segsync/" + name)
            }
            // As earlier builds wrote it: `version`, not `format_version`.
            try folder.write(".segsync/state.json", pulled.replacingOccurrences(of: "\"format_version\"", with: "\"version\""))
            let plan = try await CLI.run(["plan", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(plan.status == 0, "\(plan.stderr)")
            #expect(plan.stderr.contains("note: imported 7 partitions from .segsync/state.json into the SQLite state .segsync/state.sqlite; the old file is kept as state.json.imported."), "\(plan.stderr)")
            #expect(plan.stdout == "No changes: 7 partitions up to date.\n")
            #expect(!folder.exists(".segsync/state.json"))
            #expect(folder.exists(".segsync/state.json.imported"))
            #expect(try await CLI.run(["state", "pull"], in: folder.path).stdout == pulled)
            let second = try await CLI.run(["plan", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(!second.stderr.contains("imported"))
        }

        @Test("a no-op plan does not read a lockfile segsync wrote and nobody touched; a touched one is read")
        func lockfileMark() async throws {
            let (folder, emulator) = try await converged()
            let path = folder.path + "/segsync.lock"
            // Same bytes count, same inode, same modification time: only content differs,
            // which the mark cannot see, so the plan shows it did not read the file.
            var info = stat()
            stat(path, &info)
            let size = Int(info.st_size)
            let handle = try #require(FileHandle(forWritingAtPath: path))
            handle.write(Data(repeating: UInt8(ascii: "x"), count: size))
            try handle.close()
            var times = [info.st_atim, info.st_mtim]
            #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
            let trusted = try await CLI.run(["plan", "--now", Self.now, "--offline"], in: folder.path, environment: emulator.environment)
            #expect(trusted.status == 0, "\(trusted.stderr)")
            #expect(trusted.stdout == "No changes: 7 partitions up to date.\n")
            // --checksum trusts nothing it has not read.
            let checked = try await CLI.run(["plan", "--now", Self.now, "--offline", "--checksum"], in: folder.path, environment: emulator.environment)
            #expect(checked.status == 1)
            #expect(checked.stderr.contains("the lockfile \(path) is damaged"), "\(checked.stderr)")
            // Touched (as a checkout or an editor would), it is read again.
            var later = [info.st_atim, timespec(tv_sec: info.st_mtim.tv_sec + 1, tv_nsec: info.st_mtim.tv_nsec)]
            #expect(utimensat(AT_FDCWD, path, &later, 0) == 0)
            let touched = try await CLI.run(["plan", "--now", Self.now, "--offline"], in: folder.path, environment: emulator.environment)
            #expect(touched.status == 1)
            #expect(touched.stderr.contains("the lockfile \(path) is damaged"), "\(touched.stderr)")
        }
    
        @Test("status and state list|show|pull read a folder without state and leave it without .segsync: no state yet")
        func readOnlyCommands() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", ApplyTests.manifest)
            let status = try await CLI.run(["status", "--now", Self.now, "--no-strip"], in: folder.path)
            #expect(status.status == 0, "\(status.stderr)")
            #expect(status.stderr.contains("note: no state yet in the SQLite state .segsync/state.sqlite; segsync apply records it."), "\(status.stderr)")
            let list = try await CLI.run(["state", "list"], in: folder.path)
            #expect(list.status == 0, "\(list.stderr)")
            #expect(list.stdout == "State has no partitions.\n")
            let pull = try await CLI.run(["state", "pull"], in: folder.path)
            #expect(pull.status == 0, "\(pull.stderr)")
            let show = try await CLI.run(["state", "show", "everyone-daily@2026-11-26"], in: folder.path)
            #expect(show.status == 1)
            #expect(show.stderr.contains("state has no partitions"), "\(show.stderr)")
            #expect(!folder.exists(".segsync"))
        }

        @Test("state push refuses a document with a number out of range, naming the partition; nothing is replaced")
        func pushOutOfRange() async throws {
            let (folder, _) = try await converged()
            let pulled = try await CLI.run(["state", "pull"], in: folder.path).stdout
            var state = try StateJSON.decodeState(Data(pulled.utf8), source: "pull")
            let key = try #require(state.partitions.keys.sorted().first)
            state.partitions[key]?.progress = 1e300
            try folder.write("bad.json", String(decoding: try StateJSON.encoder.encode(state), as: UTF8.self))
            let pushed = try await CLI.run(["state", "push", "bad.json"], in: folder.path)
            #expect(pushed.status == 1)
            #expect(pushed.stderr.contains("bad.json has partition \(key) with progress 1e+300 is not between 0 and 100"), "\(pushed.stderr)")
            #expect(try await CLI.run(["state", "pull"], in: folder.path).stdout == pulled)
        }

        @Test("a progress of 1e300 and an infinite update time in a state row: plan, status and state show work, clamped")
        func storedOutOfRange() async throws {
            let (folder, emulator) = try await converged()
            let database = folder.path + "/.segsync/state.sqlite"
            #expect(try await CLI.system("/usr/bin/sqlite3", [database, "UPDATE segsync_partitions SET phase = 'running', operation_state = 'RUNNING', progress = 1e300, updated_at = 9e999 WHERE key LIKE 'everyone-daily@2026-11-26%'"]) == 0)
            let plan = try await CLI.run(["plan", "--now", Self.now, "--offline"], in: folder.path, environment: emulator.environment)
            #expect(plan.status == 0, "\(plan.stderr)")
            #expect(plan.stdout.contains("(RUNNING, 100%)"), "\(plan.stdout)")
            let status = try await CLI.run(["status", "--now", Self.now], in: folder.path)
            #expect(status.status == 0, "\(status.stderr)")
            let show = try await CLI.run(["state", "show", "everyone-daily@2026-11-26"], in: folder.path)
            #expect(show.stdout.contains("progress         100%"), "\(show.stdout)")
        }

        @Test("an earlier build's journal without its state.json is imported by the next run")
        func legacyJournalAlone() async throws {
            let (folder, emulator) = try await converged()
            let pulled = try await CLI.state(folder.path)
            for name in ["state.sqlite", "state.sqlite-wal", "state.sqlite-shm"] {
                try? FileManager.default.removeItem(atPath: folder.path + "/.segsync/" + name)
            }
            // As a build killed in its first run left it: journal lines, no snapshot.
            var journal = ""
            for (key, record) in pulled.partitions.sorted(by: { $0.key < $1.key }) {
                let line = try JSONSerialization.jsonObject(with: StateJSON.lineEncoder.encode(record))
                journal += String(decoding: try JSONSerialization.data(withJSONObject: ["key": key, "record": line], options: [.sortedKeys]), as: UTF8.self) + "\n"
            }
            try folder.write(".segsync/state.journal", journal)
            let plan = try await CLI.run(["plan", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(plan.status == 0, "\(plan.stderr)")
            #expect(plan.stderr.contains("note: imported 7 partitions from .segsync/state.journal"), "\(plan.stderr)")
            #expect(plan.stdout == "No changes: 7 partitions up to date.\n", "\(plan.stdout)")
            #expect(try await CLI.state(folder.path).partitions == pulled.partitions)
            #expect(folder.exists(".segsync/state.journal.imported"))
        }
    }
}
