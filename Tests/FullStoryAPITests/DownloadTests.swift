import FileIO
import Foundation
import FullStoryAPI
import FullStoryContract
import SegSyncEmulator
import SegSyncVocabulary
import Testing

@Suite("Downloads", .timeLimit(.minutes(10)))
struct DownloadTests {
    /// Downloads the export of `request` from a fault-free emulator: the reference bytes.
    private func reference(
        _ dialect: Dialect, _ request: ExportRequest, rowsPerHour: Int = 60, decompress: Bool
    ) async throws -> DownloadResult {
        var result: DownloadResult?
        try await withHarness(dialect, emulator: { $0.rowsPerHour = rowsPerHour }) { h in
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, request))
            result = try await h.client.download(link.url, to: h.path("reference"), decompress: decompress)
        }
        return try #require(result)
    }

    @Test("a raw download is the gzip file, hashed as written", arguments: Dialect.allCases)
    func rawDownload(dialect: Dialect) async throws {
        try await withHarness(dialect) { h in
            let operation = try await runToCompletion(h.client, sampleRequest(format: .csv))
            let link = try await h.client.downloadLink(for: operation)
            let path = h.path("export.csv.gz")
            let result = try await h.client.download(link.url, to: path, decompress: false)
            #expect(result.bytes == (try fileSize(path)))
            #expect(result.sha256 == (try sha256OfFile(path)))
            #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
            let text = String(decoding: try run("gzip", ["-dc", path]), as: UTF8.self)
            #expect(text.hasPrefix("IndvId,UserId,"))
        }
    }

    @Test(
        "gunzip while streaming: the checksum is of the bytes written",
        arguments: [
            (Dialect.seed, ExportFormat.json), (.seed, .csv), (.fullstory, .json), (.fullstory, .csv),
            (.fullstory, .ndjson),
        ]
    )
    func gunzip(dialect: Dialect, format: ExportFormat) async throws {
        try await withHarness(dialect, emulator: { $0.rowsPerHour = 90 }) { h in
            let link = try await h.client.downloadLink(
                for: runToCompletion(h.client, sampleRequest(format: format, hours: 2)))
            let raw = try await h.client.download(link.url, to: h.path("raw.gz"), decompress: false)
            let path = h.path("export.\(format.rawValue)")
            let result = try await h.client.download(link.url, to: path, decompress: true)

            #expect(result.sha256 == (try sha256OfFile(path)))
            #expect(result.bytes == (try fileSize(path)))
            #expect(result.bytes > raw.bytes)
            let gunzipped = try run("gzip", ["-dc", h.path("raw.gz")])
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == gunzipped)

            let text = String(decoding: gunzipped, as: UTF8.self)
            switch format {
            case .json:
                let rows = try #require(try JSONSerialization.jsonObject(with: gunzipped) as? [[String: Any]])
                #expect(rows.count == 180)
                #expect(rows.first?["EventStart"] as? String == "2026-01-01T00:00:00.000Z")
                #expect(rows.allSatisfy { $0["IndvId"] is NSNumber && $0["EventType"] is String })
            case .csv:
                let lines = text.split(separator: "\n")
                #expect(lines.count == 181)
                #expect(lines.first?.hasPrefix("IndvId,UserId,UserDisplayName") == true)
            case .ndjson:
                let lines = text.split(separator: "\n")
                #expect(lines.count == 180)
                #expect(lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) is [String: Any] })
            }
        }
    }

    @Test("the same request downloads the same bytes, on any emulator")
    func deterministic() async throws {
        let first = try await reference(.seed, sampleRequest(format: .csv), decompress: true)
        let second = try await reference(.seed, sampleRequest(format: .csv), decompress: true)
        #expect(first == second)
        let other = try await reference(.seed, sampleRequest(format: .csv, hours: 3), decompress: true)
        #expect(other.sha256 != first.sha256)
    }

    @Test("a dropped connection is resumed with Range and gives the same file", arguments: [false, true])
    func resumesWithRange(decompress: Bool) async throws {
        let request = sampleRequest(format: .json, hours: 6)
        let expected = try await reference(.seed, request, rowsPerHour: 2000, decompress: decompress)
        try await withHarness(
            .seed,
            emulator: {
                $0.rateDrop = 1
                $0.rowsPerHour = 2000
            }
        ) { h in
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, request))
            let result = try await h.client.download(link.url, to: h.path("export"), decompress: decompress)
            #expect(result == expected)
            #expect(result.sha256 == (try sha256OfFile(h.path("export"))))
            let downloads = try h.requests("download")
            #expect(downloads.count == 2)
            #expect(downloads.first?.fault == "drop")
            #expect(downloads.first?.range == nil)
            #expect(downloads.last?.status == 206)
            let range = try #require(downloads.last?.range)
            #expect(range.hasPrefix("bytes=") && range.hasSuffix("-") && range != "bytes=0-")
        }
    }

    /// Keeps every byte a download streams to it, in order.
    final class CollectingStream: DownloadStream, @unchecked Sendable {
        private let lock = NSLock()
        private var kept: [UInt8] = []
        var bytes: [UInt8] { lock.withLock { kept } }
        func write(_ bytes: [UInt8]) async throws { lock.withLock { kept += bytes } }
        func restart() async throws { lock.withLock { kept = [] } }
    }

    @Test("a download of many batches lands in the file in order: the same bytes a stream receives, hashed as written")
    func manyBatchesInOrder() async throws {
        try await withHarness(.fullstory, emulator: { $0.rowsPerHour = 20_000 }) { h in
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, sampleRequest(format: .json, hours: 24)))
            let path = h.path("export.json.gz")
            let result = try await h.client.download(link.url, to: path, decompress: false)
            #expect(result.bytes > 6 << 20, "more batches than are in flight at once: \(result.bytes) bytes")
            let stream = CollectingStream()
            let streamed = try await h.client.download(link.url, into: stream, decompress: false)
            #expect(streamed == result)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(stream.bytes))
            #expect(result.sha256 == (try sha256OfFile(path)))
        }
    }

    /// A stream whose `failing`-th write fails, as an upload part the store refused.
    final class FailingStream: DownloadStream, @unchecked Sendable {
        struct Refused: Error {}
        private let lock = NSLock()
        private var writes = 0
        private(set) var bytes = 0
        let failing: Int
        init(failing: Int) { self.failing = failing }
        func write(_ bytes: [UInt8]) async throws {
            try lock.withLock {
                writes += 1
                if writes == failing { throw Refused() }
                self.bytes += bytes.count
            }
        }
        func restart() async throws { lock.withLock { bytes = 0 } }
    }

    @Test("a write that fails ends the download with its own error, never taken for a break to resume after",
          arguments: [1, 2])
    func failedWriteIsNotSkipped(failing: Int) async throws {
        try await withHarness(.seed, emulator: { $0.rowsPerHour = 20_000 }) { h in
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, sampleRequest(format: .json, hours: 6)))
            let stream = FailingStream(failing: failing)
            await #expect(throws: FailingStream.Refused.self) {
                _ = try await h.client.download(link.url, into: stream, decompress: true)
            }
            #expect(try h.requests("download").count == 1, "a failed write is not resumed past")
        }
    }

    @Test("a 206 that ends cleanly short of its Content-Range is resumed from the right byte, never kept short")
    func shortRangeResumed() async throws {
        let request = sampleRequest(format: .json, hours: 6)
        // Raw bytes: no gzip trailer to notice a short file.
        let expected = try await reference(.seed, request, rowsPerHour: 2000, decompress: false)
        try await withHarness(
            .seed,
            emulator: {
                $0.rateDrop = 1
                $0.rateShortRange = 1
                $0.maxFaults = 2
                $0.rowsPerHour = 2000
            }
        ) { h in
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, request))
            let result = try await h.client.download(link.url, to: h.path("export.gz"), decompress: false)
            #expect(result == expected)
            #expect(result.sha256 == (try sha256OfFile(h.path("export.gz"))))
            let downloads = try h.requests("download")
            #expect(downloads.map(\.fault) == ["drop", "short", nil], "\(downloads)")
            #expect(downloads.last?.status == 206)
        }
    }

    /// The placement calls a download made, in order, with their file names.
    final class PlacementLog: @unchecked Sendable {
        private let lock = NSLock()
        private var entries: [String] = []
        var calls: [String] { lock.withLock { entries } }
        func append(_ entry: String) { lock.withLock { entries.append(entry) } }

        /// The system's calls, recorded; `failSync` makes the file's fsync fail with that errno.
        func placement(failSync: Int32? = nil) -> FileIO.Placement {
            FileIO.Placement(
                sync: { descriptor, path in
                    self.append("fsync \((path as NSString).lastPathComponent)")
                    if let failSync { throw FileIO.Failure(failSync) }
                    try FileIO.Placement.system.sync(descriptor, path)
                },
                rename: { from, to in
                    self.append("rename \((from as NSString).lastPathComponent) → \((to as NSString).lastPathComponent)")
                    try FileIO.Placement.system.rename(from, to)
                },
                syncDirectory: { directory in
                    self.append("fsync folder")
                    try FileIO.Placement.system.syncDirectory(directory)
                })
        }
    }

    @Test("a download is fsynced, then renamed into place, then its folder fsynced")
    func durableOrder() async throws {
        let log = PlacementLog()
        try await withHarness(.seed, client: { $0.placement = log.placement() }) { h in
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, sampleRequest()))
            _ = try await h.client.download(link.url, to: h.path("export.json.gz"), decompress: false)
            #expect(log.calls == ["fsync export.json.gz.partial", "rename export.json.gz.partial → export.json.gz", "fsync folder"])
        }
    }

    @Test("a failing fsync leaves neither the file nor its .partial", arguments: [EIO, ENOSPC])
    func failingSync(code: Int32) async throws {
        let log = PlacementLog()
        try await withHarness(.seed, client: { $0.placement = log.placement(failSync: code) }) { h in
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, sampleRequest()))
            let path = h.path("export.json.gz")
            let error = await #expect(throws: FullStoryAPIError.self) {
                try await h.client.download(link.url, to: path, decompress: false)
            }
            switch (code, error) {
            case (ENOSPC, .diskFull?), (EIO, .fileSystem?): break
            default: Issue.record("errno \(code) gave \(String(describing: error))")
            }
            #expect(!FileManager.default.fileExists(atPath: path))
            #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
            #expect(log.calls == ["fsync export.json.gz.partial"], "nothing is renamed after a failed fsync: \(log.calls)")
        }
    }

    @Test("without Accept-Ranges a dropped download starts over from zero")
    func restartsWithoutRanges() async throws {
        let request = sampleRequest(format: .csv, hours: 6)
        let expected = try await reference(.seed, request, rowsPerHour: 2000, decompress: true)
        try await withHarness(
            .seed,
            emulator: {
                $0.rateDrop = 1
                $0.maxFaults = 1
                $0.supportsRanges = false
                $0.rowsPerHour = 2000
            }
        ) { h in
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, request))
            let result = try await h.client.download(link.url, to: h.path("export.csv"), decompress: true)
            #expect(result == expected)
            let downloads = try h.requests("download")
            #expect(downloads.map(\.status) == [200, 200])
            #expect(downloads.allSatisfy { $0.range == nil })
        }
    }

    @Test("a body that keeps ending short is an error and leaves no file", arguments: Dialect.allCases)
    func truncated(dialect: Dialect) async throws {
        try await withHarness(
            dialect,
            emulator: {
                $0.rateTruncate = 1
                $0.rowsPerHour = 1000
            }
        ) { h in
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, sampleRequest()))
            let path = h.path("export.json")
            let error = await #expect(throws: FullStoryAPIError.self) {
                try await h.client.download(link.url, to: path, decompress: true)
            }
            guard case .truncatedDownload(_, let expected, let received)? = error else {
                Issue.record("expected truncatedDownload, got \(String(describing: error))")
                return
            }
            #expect(expected != nil && received < expected!)
            #expect(error?.isTransient == true)
            #expect(!FileManager.default.fileExists(atPath: path))
            #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
            // Resumed (with Range) up to the limit, then given up.
            let downloads = try h.requests("download")
            #expect(downloads.count == 6)
            #expect(downloads.dropFirst().allSatisfy { $0.range != nil })
            let sentence = try #require(error?.description)
            #expect(!sentence.contains("sig="))
            #expect(!sentence.contains("expires="))
            #expect(sentence.contains("no file was written"))
        }
    }

    @Test("an expired link is reported as such, and a fresh one works", arguments: Dialect.allCases)
    func expiredLink(dialect: Dialect) async throws {
        try await withHarness(
            dialect,
            emulator: {
                $0.rateExpiredLink = 1
                $0.maxFaults = 1
            }
        ) { h in
            let operation = try await runToCompletion(h.client, sampleRequest())
            let stale = try await h.client.downloadLink(for: operation)
            let path = h.path("export.json")
            let error = await #expect(throws: FullStoryAPIError.self) {
                try await h.client.download(stale.url, to: path, decompress: true)
            }
            guard case .expiredDownloadLink(let shown)? = error else {
                Issue.record("expected expiredDownloadLink, got \(String(describing: error))")
                return
            }
            #expect(shown.hasSuffix("?<redacted>"))
            #expect(error?.isTransient == true)
            #expect(!FileManager.default.fileExists(atPath: path))
            #expect(!FileManager.default.fileExists(atPath: path + ".partial"))

            let fresh = try await h.client.freshDownloadLink(operationID: operation.id)
            let result = try await h.client.download(fresh.url, to: path, decompress: true)
            #expect(result.bytes > 0)
        }
    }

    @Test("a link stops working after its time to live")
    func linkLifetime() async throws {
        try await withHarness(.seed, emulator: { $0.linkTTL = 0.3 }) { h in
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, sampleRequest()))
            try await Task.sleep(for: .milliseconds(500))
            await #expect(throws: FullStoryAPIError.expiredDownloadLink(url: redacted(link.url))) {
                try await h.client.download(link.url, to: h.path("late"), decompress: false)
            }
        }
    }

    @Test("a link with a forged signature is refused")
    func forgedLink() async throws {
        try await withHarness(.seed) { h in
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, sampleRequest()))
            var parts = try #require(URLComponents(url: link.url, resolvingAgainstBaseURL: false))
            parts.queryItems = parts.queryItems?.map {
                $0.name == "sig" ? URLQueryItem(name: "sig", value: String(repeating: "0", count: 64)) : $0
            }
            await #expect(throws: FullStoryAPIError.self) {
                try await h.client.download(try #require(parts.url), to: h.path("forged"), decompress: false)
            }
            #expect(try h.requests("download").map(\.status) == [403])
        }
    }

    @Test("the API key goes to the API's own host only", arguments: Dialect.allCases)
    func keyOnlyToAPIHost(dialect: Dialect) async throws {
        try await withHarness(dialect) { h in
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, sampleRequest()))
            _ = try await h.client.download(link.url, to: h.path("same-host"), decompress: false)
            #expect(try h.requests("download").map(\.auth) == [true])
        }
        // Production links live on another host (signed storage): no key for them.
        try await withHarness(dialect, emulator: { $0.downloadHost = "localhost" }) { h in
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, sampleRequest()))
            #expect(link.url.host == "localhost")
            _ = try await h.client.download(link.url, to: h.path("other-host"), decompress: false)
            #expect(try h.requests("download").map(\.auth) == [false])
        }
    }
}
