import AsyncHTTPClient
import Crypto
import FileIO
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension FullStoryClient {
    /// Streams `url` to `finalPath`, hashing while it streams, and only then puts the file
    /// in place.
    ///
    /// - Bytes go to `<finalPath>.partial`, chunk by chunk as they arrive (memory stays flat
    ///   whatever the size), are fsynced, and the file is renamed to `finalPath`.
    /// - `decompress: true` gunzips on the fly; the size and SHA-256 are those of the bytes
    ///   written to disk.
    /// - A dropped connection is resumed with `Range: bytes=N-` when the server accepts
    ///   ranges (and answers 206), else the download restarts from zero; at most
    ///   ``Configuration/maxDownloadResumes`` times.
    /// - A body shorter than its `Content-Length` is never a file: the `.partial` is removed
    ///   and ``FullStoryAPIError/truncatedDownload(url:expectedBytes:receivedBytes:)`` thrown.
    /// - 403/404/410 mean the signed link expired: ``FullStoryAPIError/expiredDownloadLink(url:)``.
    /// - The API key is sent only when the link is on the API's own host; production links
    ///   are signed and live elsewhere, and must not see the key.
    ///
    /// The parent folder of `finalPath` must exist. `progress` hears the bytes received so
    /// far (before gunzip) and the announced total, after each batch written.
    public func download(_ url: URL, to finalPath: String, decompress: Bool,
                         progress: @escaping @Sendable (_ received: Int64, _ total: Int64?) -> Void = { _, _ in }) async throws -> DownloadResult {
        let shown = redacted(url)
        _ = try APIEndpoint.validate(url.absoluteString, source: "the download link", use: .downloadLink)
        let partialPath = finalPath + ".partial"
        let sink = try DownloadSink(path: partialPath, decompress: decompress, shownURL: shown)
        do {
            let expected = try await stream(url, shown: shown, into: sink, progress: progress)
            // fsync and rename block: they run on NIO's thread pool for blocking work, not on
            // the cooperative threads that poll, pace and download everything else.
            let result = try await NIOThreadPool.singleton.runIfActive { try sink.finish() }
            try await NIOThreadPool.singleton.runIfActive { try DownloadSink.commit(partialPath, to: finalPath) }
            logger.debug(
                "Download finished.",
                metadata: [
                    "url": .string(shown), "received": .stringConvertible(expected),
                    "written": .stringConvertible(result.bytes),
                ]
            )
            return result
        } catch {
            sink.discard()
            throw error
        }
    }

    /// Whether `url` is on the API's own host (same scheme, host and port).
    func isAPIHost(_ url: URL) -> Bool {
        let api = configuration.endpoint
        func port(_ u: URL) -> Int? {
            u.port ?? (u.scheme?.lowercased() == "https" ? 443 : u.scheme?.lowercased() == "http" ? 80 : nil)
        }
        return url.scheme?.lowercased() == api.scheme?.lowercased()
            && url.host?.lowercased() == api.host?.lowercased()
            && port(url) == port(api)
    }

    /// Fetches the body into `sink`, resuming or restarting after drops. Returns the
    /// number of bytes received (before gunzip).
    private func stream(_ url: URL, shown: String, into sink: DownloadSink,
                        progress: @Sendable (Int64, Int64?) -> Void) async throws -> Int64 {
        var received: Int64 = 0
        var drops = 0
        var rangesRefused = false
        while true {
            let response = try await connect(url, from: received, shown: shown)
            let contentLength = response.headers.first(name: "Content-Length").flatMap { Int64($0) }
            let expectedTotal: Int64?
            if response.status.code == 206 {
                guard let range = ContentRange(response.headers.first(name: "Content-Range") ?? ""), range.start == received else {
                    // A range we did not ask for: start over without ranges.
                    logger.info("The server answered a different range than asked; restarting the download.", metadata: ["url": .string(shown)])
                    try sink.restart()
                    received = 0
                    rangesRefused = true
                    _ = try? await response.body.collect(upTo: 0)
                    continue
                }
                expectedTotal = range.total(resumedAt: received, contentLength: contentLength)
            } else {
                if received > 0 {
                    // 200 to a Range request: the server sends everything again.
                    try sink.restart()
                    received = 0
                }
                expectedTotal = contentLength
            }
            let acceptsRanges = !rangesRefused
                && (response.status.code == 206 || response.headers.first(name: "Accept-Ranges")?.lowercased().contains("bytes") == true)
            let interruption = try await receive(response, into: sink, received: &received, expectedTotal: expectedTotal, progress: progress)
            if let expectedTotal, received > expectedTotal {
                throw FullStoryAPIError.invalidDownload(
                    url: shown, reason: "the server sent more bytes (\(received)) than it announced (\(expectedTotal))")
            }
            // Every promised byte arrived (even if the connection then broke): done. The
            // gzip trailer check still guards a decompressed file.
            if let expectedTotal, received == expectedTotal { return received }
            if interruption == nil, expectedTotal == nil { return received }
            drops += 1
            let resume = acceptsRanges && received > 0
            try await recover(shown: shown, cause: interruption ?? "the body ended early", drops: drops, received: received,
                              expectedTotal: expectedTotal, resume: resume, sink: sink)
            if !resume { received = 0 }
        }
    }

    /// Opens the download at byte `offset` (a `Range` request after the first), retrying
    /// transient failures under the retry policy.
    private func connect(_ url: URL, from offset: Int64, shown: String) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .GET
        request.headers.add(name: "User-Agent", value: "segsync")
        if isAPIHost(url) {
            request.headers.add(name: "Authorization", value: authorizationValue)
        }
        if offset > 0 {
            request.headers.add(name: "Range", value: "bytes=\(offset)-")
        }
        let frozenRequest = request
        return try await configuration.retryPolicy.run(
            .idempotent,
            willRetry: { failure, wait in
                self.logger.info(
                    "Retrying a download after a transient failure.",
                    metadata: [
                        "url": .string(shown), "cause": .string(failure.error.description),
                        "wait": .string(FullStoryAPIError.format(wait)),
                    ]
                )
            }
        ) { _ in
            try await self.openDownload(frozenRequest, shown: shown)
        }
    }

    /// Writes the response's body into `sink`, counting `received`. Returns why the body
    /// broke off, or nil when it ended.
    private func receive(_ response: HTTPClientResponse, into sink: DownloadSink, received: inout Int64, expectedTotal: Int64?,
                         progress: @Sendable (Int64, Int64?) -> Void) async throws -> String? {
        var interruption: String?
        // Chunks are written (and hashed) in batches on the thread pool: a slow disk
        // then stalls this download only.
        var batch: [ByteBuffer] = []
        var batchBytes = 0
        // Progress is told after each batch, and at least every quarter second on a slow link.
        var told = ContinuousClock.now
        do {
            for try await chunk in response.body {
                received += Int64(chunk.readableBytes)
                batch.append(chunk)
                batchBytes += chunk.readableBytes
                if batchBytes >= DownloadSink.batchBytes {
                    try await sink.write(batch)
                    batch.removeAll(keepingCapacity: true)
                    batchBytes = 0
                    progress(received, expectedTotal)
                    told = .now
                } else if ContinuousClock.now - told > .milliseconds(250) {
                    progress(received, expectedTotal)
                    told = .now
                }
            }
        } catch let error as FullStoryAPIError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            interruption = TransportFailure.classify(error).1
        }
        // What arrived before a break is kept: a resume continues after it.
        if !batch.isEmpty { try await sink.write(batch) }
        progress(received, expectedTotal)
        return interruption
    }

    /// After the body broke off: gives up once the resumes are used up, else restarts the
    /// file (unless it can `resume` where it stopped) and waits before trying again.
    private func recover(shown: String, cause: String, drops: Int, received: Int64, expectedTotal: Int64?,
                         resume: Bool, sink: DownloadSink) async throws {
        guard drops <= configuration.maxDownloadResumes else {
            logger.warning(
                "Download kept breaking off; giving up.",
                metadata: ["url": .string(shown), "received": .stringConvertible(received), "cause": .string(cause)])
            throw FullStoryAPIError.truncatedDownload(url: shown, expectedBytes: expectedTotal, receivedBytes: received)
        }
        if resume {
            logger.info(
                "Download broke off; resuming where it stopped.",
                metadata: ["url": .string(shown), "offset": .stringConvertible(received), "cause": .string(cause)])
        } else {
            logger.info("Download broke off; restarting from the beginning.", metadata: ["url": .string(shown), "cause": .string(cause)])
            try sink.restart()
        }
        try await configuration.retryPolicy.sleep(configuration.retryPolicy.backoff(attempt: drops))
    }

    /// Sends one download request and returns the response once its status says a body
    /// follows (200/206); everything else is an error, retryable ones as ``AttemptFailure``.
    private func openDownload(_ request: HTTPClientRequest, shown: String) async throws -> HTTPClientResponse {
        let response: HTTPClientResponse
        do {
            response = try await httpClient.execute(request, timeout: TimeAmount(configuration.requestTimeout))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            let (outcome, cause) = TransportFailure.classify(error)
            throw AttemptFailure(outcome: outcome, error: .transport(cause: cause))
        }
        let status = Int(response.status.code)
        if status == 200 || status == 206 { return response }
        // Read (a little of) the body so the connection can be reused.
        let body = (try? await response.body.collect(upTo: 64 * 1024)).map { Data($0.readableBytesView) } ?? Data()
        let retryAfter = retryAfter(in: response.headers)
        switch status {
        case 403, 404, 410:
            throw FullStoryAPIError.expiredDownloadLink(url: shown)
        case 401:
            throw FullStoryAPIError.unauthorized(
                keyEnvironmentVariable: configuration.keyEnvironmentVariable, message: WireError.message(in: body))
        case 429:
            throw AttemptFailure(
                outcome: .status(429, retryAfter: retryAfter), error: .rateLimited(retryAfter: retryAfter))
        case 500...599:
            throw AttemptFailure(
                outcome: .status(status, retryAfter: retryAfter),
                error: .serverError(status: status, message: WireError.message(in: body)))
        default:
            throw FullStoryAPIError.unexpectedResponse(
                status: status, detail: "the download link answered HTTP \(status)")
        }
    }
}

/// `Content-Range: bytes 100-199/200` (the total may be `*`).
struct ContentRange: Equatable {
    var start: Int64
    var end: Int64
    var total: Int64?

    init?(_ header: String) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bytes ") else { return nil }
        let spec = trimmed.dropFirst(6)
        let parts = spec.split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let bounds = parts[0].split(separator: "-", maxSplits: 1)
        guard bounds.count == 2, let start = Int64(bounds[0]), let end = Int64(bounds[1]), start <= end else {
            return nil
        }
        self.start = start
        self.end = end
        self.total = parts[1] == "*" ? nil : Int64(parts[1])
    }

    /// The whole body's size after a resume at `received`: the range's total, else what
    /// was received plus this answer's `Content-Length`. Header values are the server's
    /// text: a sum that would overflow is unknown (nil), never a trap.
    func total(resumedAt received: Int64, contentLength: Int64?) -> Int64? {
        if let total { return total }
        guard let contentLength else { return nil }
        let (sum, overflow) = received.addingReportingOverflow(contentLength)
        return overflow ? nil : sum
    }
}

/// The `.partial` file a download streams into: writes, hashes and (optionally) gunzips
/// each chunk as it comes, so nothing accumulates in memory.
///
/// Used from one task only.
final class DownloadSink: @unchecked Sendable {
    /// How much a download gathers before one trip to the thread pool writes it.
    static let batchBytes = 1 << 20

    let path: String
    let shownURL: String
    private let decompress: Bool
    private var descriptor: Int32
    private var hasher = SHA256()
    private var written: Int64 = 0
    private var inflater: GzipInflater?

    init(path: String, decompress: Bool, shownURL: String) throws {
        self.path = path
        self.decompress = decompress
        self.shownURL = shownURL
        // The inflater first: if it cannot start, no descriptor or .partial is left behind.
        inflater = decompress ? try GzipInflater(shownURL: shownURL) : nil
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else {
            throw FullStoryAPIError.fileSystem(path: path, reason: Self.errnoText())
        }
    }

    deinit {
        // Every path out of a download finishes or discards; this only guards a leak.
        if descriptor >= 0 { close(descriptor) }
    }

    /// Writes `chunks` on NIO's thread pool for blocking work. One caller at a time: the
    /// download that owns the sink awaits each write before the next.
    func write(_ chunks: [ByteBuffer]) async throws {
        try await NIOThreadPool.singleton.runIfActive {
            for chunk in chunks { try self.write(chunk) }
        }
    }

    func write(_ chunk: ByteBuffer) throws {
        if let inflater {
            try inflater.feed(chunk) { try self.writeToDisk($0) }
        } else {
            try writeToDisk(chunk)
        }
    }

    /// Throws everything away and starts the file again from byte zero.
    func restart() throws {
        guard ftruncate(descriptor, 0) == 0, lseek(descriptor, 0, SEEK_SET) == 0 else {
            throw FullStoryAPIError.fileSystem(path: path, reason: Self.errnoText())
        }
        hasher = SHA256()
        written = 0
        writebackFrom = 0
        inflater = decompress ? try GzipInflater(shownURL: shownURL) : nil
    }

    /// Checks the gzip stream is complete, fsyncs and closes. The file stays `.partial`.
    func finish() throws -> DownloadResult {
        try inflater?.finish()
        do {
            try FileIO.sync(descriptor)
        } catch let failure as FileIO.Failure where failure.code == ENOSPC || failure.code == EDQUOT {
            throw FullStoryAPIError.diskFull(folder: (path as NSString).deletingLastPathComponent)
        } catch {
            throw FullStoryAPIError.fileSystem(path: path, reason: "\(error)")
        }
        close(descriptor)
        descriptor = -1
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        return DownloadResult(bytes: written, sha256: digest)
    }

    /// Closes (if open) and removes the `.partial`.
    func discard() {
        if descriptor >= 0 {
            close(descriptor)
            descriptor = -1
        }
        unlink(path)
    }

    /// Renames the finished `.partial` into place and fsyncs the folder, so the new name
    /// survives a crash as well as the bytes do.
    static func commit(_ partialPath: String, to finalPath: String) throws {
        guard rename(partialPath, finalPath) == 0 else {
            throw FullStoryAPIError.fileSystem(path: finalPath, reason: errnoText())
        }
        // Best effort: the bytes are already durable, and some file systems cannot fsync a folder.
        try? FileIO.syncDirectory((finalPath as NSString).deletingLastPathComponent)
    }

    private func writeToDisk(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            hasher.update(bufferPointer: bytes)
            try writeRaw(bytes)
        }
    }

    /// Writes bytes (hashed elsewhere) to the `.partial`.
    private func writeRaw(_ bytes: UnsafeRawBufferPointer) throws {
        do {
            try FileIO.writeAll(descriptor, bytes)
        } catch let failure as FileIO.Failure where failure.code == ENOSPC || failure.code == EDQUOT {
            throw FullStoryAPIError.diskFull(folder: (path as NSString).deletingLastPathComponent)
        } catch {
            throw FullStoryAPIError.fileSystem(path: path, reason: "\(error)")
        }
        written += Int64(bytes.count)
        if written - writebackFrom >= Self.writebackBytes { startWriteback() }
    }

    /// Bytes between two starts of writeback.
    static let writebackBytes: Int64 = 8 << 20
    /// Where the last writeback started; what came before it is on its way to the disk.
    private var writebackFrom: Int64 = 0

    /// Sends what was written so far on to the disk while the download goes on, so the
    /// final fsync waits for the last few MiB instead of the whole file; pages already
    /// written back are dropped from the cache (a big export does not evict everything
    /// else). Linux starts writeback of a range for `POSIX_FADV_DONTNEED`; elsewhere this
    /// is advice only, and the fsync does all the work as before.
    private func startWriteback() {
        let from = max(0, writebackFrom - Self.writebackBytes)
        #if canImport(Glibc)
        _ = posix_fadvise(descriptor, off_t(from), off_t(written - from), POSIX_FADV_DONTNEED)
        #endif
        writebackFrom = written
    }

    private static func errnoText() -> String {
        FileIO.Failure(errno).description
    }
}
