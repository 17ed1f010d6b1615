import Foundation
import NIOCore
import Testing

@testable import FullStoryAPI

/// The sink's two lanes, driven directly: many small batches handed on at once, more than
/// a download ever keeps in flight, so batches that ran out of order would show.
@Suite("Download sink lanes", .timeLimit(.minutes(2)))
struct DownloadSinkTests {
    /// `count` batches of a few bytes each, every one different.
    private func batches(_ count: Int) -> [[UInt8]] {
        (0..<count).map { index in Array("batch \(index);".utf8) }
    }

    @Test("batches handed on at once are hashed and written in the order they were handed")
    func lanesKeepOrder() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sink-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("export.partial").path
        let sink = try DownloadSink(path: path, decompress: false, shownURL: "test")
        #expect(sink.batchesInFlight > 1, "a raw file download runs both lanes")

        let parts = batches(3000)
        let tasks = parts.map { sink.enqueue([ByteBuffer(bytes: $0)]) }
        for task in tasks { try await task.value }
        let result = try await sink.finish()

        let expected = Data(parts.joined())
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == expected, "the write lane keeps order")
        #expect(result.sha256 == (try sha256OfFile(path)), "the hash lane keeps order")
        #expect(result.bytes == Int64(expected.count))
    }
}
