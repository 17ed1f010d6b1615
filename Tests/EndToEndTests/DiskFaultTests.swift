import Foundation
import SegSync
import Testing
import TestSupport

extension EndToEnd {
    /// The output folder and `.segsync/` on a tiny file system (a tmpfs with a size limit,
    /// which needs root; elsewhere the test says why it skips).
    @Suite(.serialized) struct DiskFaultTests {
        static let manifest = """
            version: 1
            exports:
              - name: daily-people
                segment: everyone
                type: individuals
                decompress: true
                window: { every: 1d, last: 6d }
            """

        /// Runs a system tool; its exit status.
        @discardableResult
        func system(_ tool: String, _ arguments: [String]) -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = arguments
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return -1 }
            process.waitUntilExit()  // mount and umount: a moment (and defer cannot await)
            return process.terminationStatus
        }

        @Test("a full disk fails apply with one clear error, writes nothing half under a final name, and the next run with space converges")
        func fullDisk() async throws {
            let folder = try TemporaryFolder()
            let root = folder.path + "/tiny"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            guard getuid() == 0, system("/bin/mount", ["-t", "tmpfs", "-o", "size=700k", "tmpfs", root]) == 0 else {
                print("DiskFaultTests: skipped: mounting a size-limited tmpfs needs root (running as uid \(getuid())) and mount(8)")
                return
            }
            defer { system("/bin/umount", ["-l", root]) }
            let manifestPath = root + "/segsync.yaml"
            try Self.manifest.write(toFile: manifestPath, atomically: false, encoding: .utf8)
            // About 290 KB a file: two fit, the third does not.
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2", "--rows-per-hour", "30"])
            let now = ApplyTests.now

            let full = try await CLI.run(["apply", "-f", manifestPath, "--now", now, "--poll-interval", "0.1", "--max-in-flight", "1"],
                                   in: folder.path, environment: emulator.environment)
            #expect(full.status == 1, "\(full.stdout)\(full.stderr)")
            let sentence = "The disk holding \(root)/exports is full; free some space and run apply again"
            #expect((full.stdout + full.stderr).contains(sentence), "\(full.stdout)\(full.stderr)")
            let summary = full.stdout.components(separatedBy: "Failed:\n").last ?? ""
            #expect(summary.components(separatedBy: "is full").count == 2, "one line for the export: \(summary)")

            // Nothing half-written under a final name: no leftovers, every recorded file intact.
            let names = FileManager.default.enumerator(atPath: root + "/exports")?.compactMap { $0 as? String } ?? []
            #expect(names.allSatisfy { !$0.hasSuffix(".partial") && !AtomicFile.isTemporary($0) }, "\(names)")
            let verify = try await CLI.run(["verify", "-f", manifestPath], in: folder.path)
            #expect(!verify.stdout.contains("changed") && !verify.stdout.contains("missing"), "\(verify.stdout)")
            // State is readable, and knows the finished operations.
            let plan = try await CLI.run(["plan", "-f", manifestPath, "--offline", "--now", now], in: folder.path, environment: emulator.environment)
            #expect(plan.status == 0, "\(plan.stdout)\(plan.stderr)")
            #expect(plan.stdout.contains("↓ download"), "\(plan.stdout)")
            #expect(!plan.stdout.contains("+ create"), "\(plan.stdout)")

            // With space, the next run converges without exporting anything again.
            #expect(system("/bin/mount", ["-o", "remount,size=16m", root]) == 0)
            let creates = emulator.creates
            let resumed = try await CLI.run(["apply", "-f", manifestPath, "--now", now, "--poll-interval", "0.1"], in: folder.path,
                                      environment: emulator.environment)
            #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
            #expect(emulator.creates == creates)
            #expect(creates == 6)
            #expect(try await CLI.run(["verify", "-f", manifestPath], in: folder.path).status == 0)
        }

        @Test("an output folder out of inodes fails apply, but never costs a second export: every id is kept and resumed")
        func outOfInodes() async throws {
            let folder = try TemporaryFolder()
            let exports = folder.path + "/exports"
            try FileManager.default.createDirectory(atPath: exports, withIntermediateDirectories: true)
            guard getuid() == 0, system("/bin/mount", ["-t", "tmpfs", "-o", "nr_inodes=8,size=16m", "tmpfs", exports]) == 0 else {
                print("DiskFaultTests: skipped: mounting an inode-limited tmpfs needs root (running as uid \(getuid())) and mount(8)")
                return
            }
            defer { system("/bin/umount", ["-l", exports]) }
            try folder.write("segsync.yaml", Self.manifest.replacingOccurrences(of: "last: 6d", with: "last: 12d"))
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2", "--rows-per-hour", "2"])
            let now = ApplyTests.now
            let arguments = ["apply", "--now", now, "--poll-interval", "0.1", "--max-in-flight", "4"]
            let starved = try await CLI.run(arguments, in: folder.path, environment: emulator.environment)
            #expect(starved.status == 1, "\(starved.stdout)\(starved.stderr)")
            #expect(!(starved.stdout + starved.stderr).contains("Recording this failure in state failed too"), "\(starved.stdout)\(starved.stderr)")
            #expect(emulator.creates == 12)
            // Every partition has its export recorded: none is planned for a new one.
            let plan = try await CLI.run(["plan", "--offline", "--now", now], in: folder.path, environment: emulator.environment)
            #expect(!plan.stdout.contains("+ create"), "\(plan.stdout)")

            #expect(system("/bin/mount", ["-o", "remount,nr_inodes=1000", exports]) == 0)
            let resumed = try await CLI.run(arguments, in: folder.path, environment: emulator.environment)
            #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
            #expect(emulator.creates == 12, "12 partitions, \(emulator.creates) exports")
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0)
        }
    }
}
