import Foundation
import SegSync
import Testing
import TestSupport

extension EndToEnd {
    /// What a plan of a large workspace costs in memory, measured as the peak resident set
    /// of the built executable (no timings: memory does not depend on the machine's load).
    @Suite struct PlanMemoryTests {
        static let now = "2026-11-28T00:00:00Z"

        /// A converged workspace of `exports` × 365 daily partitions (as the benchmarks
        /// make it, then applied once so the lockfile mark is recorded), and a folder with
        /// the same manifest and no state.
        static func workspaces(_ root: TemporaryFolder, exports: Int) async throws -> (full: String, empty: String) {
            let full = root.path + "/full-\(exports)", empty = root.path + "/empty-\(exports)"
            let made = try await CLI.run([full, String(exports), "365", now], in: root.path, executable: "segsync-fixture")
            try #require(made.status == 0, "segsync-fixture failed: \(made.stderr)")
            let applied = try await CLI.run(["apply", "-q", "--now", now, "-f", full], in: root.path)
            try #require(applied.status == 0 && applied.stdout.hasPrefix("No changes: \(exports * 365) partitions"), "\(applied.stdout)\(applied.stderr)")
            try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: full + "/segsync.yaml", toPath: empty + "/segsync.yaml")
            return (full, empty)
        }

        /// The least peak memory (KiB) of two `segsync plan` runs over `folder`.
        static func planMemory(_ folder: String) async throws -> Int {
            var least = Int.max
            for _ in 0..<2 {
                let run = try await CLI.peakMemory(["plan", "-q", "--offline", "--now", now, "-f", folder])
                try #require(run.status == 0, "segsync plan -f \(folder) exited \(run.status)")
                least = min(least, run.kibibytes)
            }
            return least
        }

        @Test("a plan's memory grows with its state, linearly, and does not hold the lockfile it need not read")
        func memoryFollowsTheState() async throws {
            let root = try TemporaryFolder()
            let small = try await Self.workspaces(root, exports: 10)    // 3,650 partitions
            let large = try await Self.workspaces(root, exports: 100)   // 36,500 partitions
            // What the state adds over planning the same manifest from nothing.
            let smallState = try await Self.planMemory(small.full) - Self.planMemory(small.empty)
            let largeState = try await Self.planMemory(large.full) - Self.planMemory(large.empty)
            let lockfileKiB = try #require(try FileManager.default.attributesOfItem(atPath: large.full + "/segsync.lock")[.size] as? Int) / 1024

            // Linear: ten times the partitions costs at most twelve times the memory (hash
            // tables and malloc's arenas grow in steps, so not exactly ten; a quadratic
            // cost would be a hundred).
            #expect(largeState <= 12 * max(smallState, 1024), "state of 36,500: \(largeState) KiB; of 3,650: \(smallState) KiB")
            // A bounded cost per partition (about 1.3 KiB today, the records and their
            // index): a record that grew would show here first.
            #expect(largeState <= 36_500 * 2, "state of 36,500 partitions: \(largeState) KiB")

            // With both files as segsync wrote them, the 16 MB lockfile is not read; once
            // it is touched, a plan must read and parse it, and that shows.
            let vouched = try await Self.planMemory(large.full)
            let touched = large.full + "/segsync.lock"
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -60)], ofItemAtPath: touched)
            let read = try await Self.planMemory(large.full)
            #expect(vouched + lockfileKiB / 2 < read, "vouched: \(vouched) KiB; lockfile read: \(read) KiB; lockfile: \(lockfileKiB) KiB")
        }
    }
}
