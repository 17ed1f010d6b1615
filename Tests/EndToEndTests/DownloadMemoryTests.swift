import Foundation
import Testing
import TestSupport

extension EndToEnd {
    /// A large export streams to disk in flat memory: the peak resident set of the built
    /// `segsync apply`, a process of its own (tests running beside it do not count), for
    /// a large export against a small one of the same shape.
    @Suite(.serialized, .timeLimit(.minutes(10))) struct DownloadMemoryTests {
        /// One hourly partition of events in JSON.
        static func manifest(decompress: Bool) -> String {
            """
            version: 1
            exports:
              - name: events
                segment: everyone
                type: events
                format: json
                decompress: \(decompress)
                window: { every: 1h, start: 2026-11-27T00:00:00Z, settle: 0 }
            """
        }

        /// The peak memory (KiB) of applying the one partition at `rowsPerHour`, and the
        /// size of what was written.
        static func apply(decompress: Bool, rowsPerHour: Int) async throws -> (kibibytes: Int, bytes: Int) {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", manifest(decompress: decompress))
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0", "--rows-per-hour", String(rowsPerHour)])
            let run = try await CLI.peakMemory(["apply", "-q", "--now", "2026-11-27T01:00:00Z", "--poll-interval", "0.05", "-f", folder.path + "/segsync.yaml"],
                                               environment: emulator.environment)
            try #require(run.status == 0, "segsync apply exited \(run.status)")
            let files = folder.list("exports").filter { $0.hasPrefix("events/") }
            let path = folder.path + "/exports/" + (try #require(files.first))
            let bytes = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            return (run.kibibytes, bytes)
        }

        @Test("memory stays flat while a large export streams to disk", arguments: [true, false])
        func flatMemory(decompress: Bool) async throws {
            let small = try await Self.apply(decompress: decompress, rowsPerHour: 3_200)
            let large = try await Self.apply(decompress: decompress, rowsPerHour: 320_000)
            // Compressed it is ~27 MiB, gunzipped ~190 MiB: either would show if held in memory.
            #expect(large.bytes > (decompress ? 180_000_000 : 25_000_000), "the export should be large: \(large.bytes) bytes")
            let growth = large.kibibytes - small.kibibytes
            #expect(growth < 16 * 1024, "peak memory grew by \(growth / 1024) MiB (\(small.kibibytes / 1024) → \(large.kibibytes / 1024) MiB) for a \(large.bytes / 1_048_576) MiB file")
            print("flat memory (decompress: \(decompress)): \(large.bytes / 1_048_576) MiB written, peak \(small.kibibytes / 1024) → \(large.kibibytes / 1024) MiB")
        }
    }
}
