import AsyncHTTPClient
import Crypto
import FileIO
import FullStoryContract
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
    public func download(_ url: URL, to finalPath: String, decompress: Bool, digestContent: Bool = false,
                         progress: @escaping @Sendable (_ received: Int64, _ total: Int64?) -> Void = { _, _ in }) async throws -> DownloadResult {
        let shown = redacted(url)
        _ = try APIEndpoint.validate(url.absoluteString, source: "the download link", use: .downloadLink)
        let partialPath = finalPath + ".partial"
        let sink = try DownloadSink(path: partialPath, decompress: decompress, digestContent: digestContent, shownURL: shown,
                                    placement: configuration.placement)
        do {
            let expected = try await stream(url, shown: shown, into: sink, progress: progress)
            // fsync and rename block: they run on NIO's thread pool for blocking work, not on
            // the cooperative threads that poll, pace and download everything else.
            let result = try await sink.finish()
            try await NIOThreadPool.singleton.runIfActive { try sink.commit(to: finalPath) }
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

    /// Streams `url` into `stream` as ``download(_:to:decompress:progress:)`` streams into a
    /// file: hashed, gunzipped when asked, resumed with `Range` after a drop (or restarted,
    /// the stream told to throw its bytes away), a short body never taken for a whole one.
    /// Completing what the stream received is the caller's.
    public func download(_ url: URL, into destination: any DownloadStream, decompress: Bool, digestContent: Bool = false,
                         progress: @escaping @Sendable (_ received: Int64, _ total: Int64?) -> Void = { _, _ in }) async throws -> DownloadResult {
        let shown = redacted(url)
        _ = try APIEndpoint.validate(url.absoluteString, source: "the download link", use: .downloadLink)
        let sink = try DownloadSink(stream: destination, decompress: decompress, digestContent: digestContent, shownURL: shown)
        _ = try await stream(url, shown: shown, into: sink, progress: progress)
        return try await sink.finish()
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
                    try await sink.restart()
                    received = 0
                    rangesRefused = true
                    _ = try? await response.body.collect(upTo: 0)
                    continue
                }
                expectedTotal = range.total(resumedAt: received, contentLength: contentLength)
            } else {
                if received > 0 {
                    // 200 to a Range request: the server sends everything again.
                    try await sink.restart()
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
        // Chunks are hashed and written in batches on the thread pool: a slow disk then
        // stalls this download only. Up to ``DownloadSink/batchesInFlight`` batches are
        // handed on while the next arrive, so receiving, hashing and writing overlap.
        do {
            return try await receiveBatches(response, into: sink, received: &received, expectedTotal: expectedTotal, progress: progress)
        } catch let failure as SinkFailure {
            throw failure.error
        }
    }

    /// A write that failed (a full disk, a refused upload part), kept apart from the body's
    /// own errors: a break in the body is resumed, a lost write must never be skipped over.
    private struct SinkFailure: Error {
        var error: any Error
    }

    private func receiveBatches(_ response: HTTPClientResponse, into sink: DownloadSink, received: inout Int64,
                                expectedTotal: Int64?, progress: @Sendable (Int64, Int64?) -> Void) async throws -> String? {
        // Batches handed to the sink and not yet hashed and written, oldest first.
        var pending: [Task<Void, any Error>] = []
        func finishOldest() async throws {
            do { try await pending.removeFirst().value } catch { throw SinkFailure(error: error) }
        }
        func hand(_ chunks: [ByteBuffer]) async throws {
            if pending.count >= sink.batchesInFlight { try await finishOldest() }
            pending.append(sink.enqueue(chunks))
        }
        var interruption: String?
        var batch: [ByteBuffer] = []
        var batchBytes = 0
        // Progress is told after each batch, and at least every quarter second on a slow link.
        var told = ContinuousClock.now
        do {
            do {
                for try await chunk in response.body {
                    received += Int64(chunk.readableBytes)
                    batch.append(chunk)
                    batchBytes += chunk.readableBytes
                    if batchBytes >= DownloadSink.batchBytes {
                        try await hand(batch)
                        batch = []
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
            } catch let failure as SinkFailure {
                throw failure
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                interruption = TransportFailure.classify(error).1
            }
            // What arrived before a break is kept: a resume continues after it.
            if !batch.isEmpty { try await hand(batch) }
            while !pending.isEmpty { try await finishOldest() }
        } catch {
            // The sink is not touched again (a restart, a close) while a batch is in a lane.
            for task in pending { _ = await task.result }
            throw error
        }
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
            try await sink.restart()
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
