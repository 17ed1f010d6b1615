import Foundation
import SegSync
import Testing
import TestSupport

extension EndToEnd {
    /// `segsync state …`, the import of an earlier build's state, and the lockfile mark.
    @Suite(.serialized) struct StateCLITests {
        static let now = ApplyTests.now

        func converged() async throws -> (TemporaryFolder, EmulatorProcess) {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", ApplyTests.manifest)
            let emulator = try EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
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
    }
}
