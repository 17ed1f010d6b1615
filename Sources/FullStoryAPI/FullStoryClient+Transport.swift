import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SegSyncVocabulary
import FullStoryContract

// How a call reaches the API: URLs, the rate limiter and retry policy, one exchange,
// and what its answer means.
extension FullStoryClient {
    /// Decodes an operation; a missing or unknown state is logged as a warning and kept
    /// as in progress, never an error: a new server-side state must not stop a run.
    func readOperation(_ body: Data, what: String, stateExpected: Bool) throws -> ExportOperation {
        let decoded = try decode(WireOperation.self, from: body, what: what)
        let operation = decoded.operation
        let shownID = Logger.MetadataValue.string(FullStoryAPIError.clip(operation.id, to: 60))
        if stateExpected, decoded.rawState == nil {
            logger.warning(
                "Operation has no state; treating it as still in progress.", metadata: ["operation": shownID])
        }
        if case .unknown(let raw) = operation.state {
            logger.warning(
                "Operation reports a state segsync does not know; treating it as still in progress.",
                metadata: ["operation": shownID, "state": .string(FullStoryAPIError.clip(raw, to: 40))]
            )
        }
        return operation
    }

    func decode<T: Decodable>(_ type: T.Type, from body: Data, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: body)
        } catch {
            throw FullStoryAPIError.unexpectedResponse(
                status: 200, detail: "\(what) could not be read: \(readableReason(error))")
        }
    }

    func url(path: [String], query: [(String, String)] = []) -> String {
        var base = configuration.endpoint.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        var text = base + "/" + path.map(Self.encodeComponent).joined(separator: "/")
        if !query.isEmpty {
            let pairs = query.map { name, value in "\(Self.encodeComponent(name))=\(Self.encodeComponent(value))" }
            text += "?" + pairs.joined(separator: "&")
        }
        return text
    }

    private static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// Percent-encodes everything but RFC 3986 unreserved characters, so an id with `/`
    /// or `?` stays one path segment and a token stays one query value.
    static func encodeComponent(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }

    var authorizationValue: String { "Basic \(configuration.apiKey.secret)" }

    /// One API call through the rate limiter and the retry policy; returns the 2xx body.
    func send(
        _ method: HTTPMethod,
        path: [String],
        query: [(String, String)] = [],
        body: Data? = nil,
        kind: RetryPolicy.RequestKind = .idempotent,
        beforeSending: (@Sendable () async throws -> Void)? = nil,
        notFound: FullStoryAPIError
    ) async throws -> Data {
        let target = url(path: path, query: query)
        // Ids are left out of log lines: operation ids are long and say nothing to a reader.
        let shownPath = path.count > 2 ? path.prefix(2).joined(separator: "/") + "/…" : path.joined(separator: "/")
        let label = "\(method.rawValue) /\(shownPath)"
        let policy = configuration.retryPolicy
        return try await policy.run(
            kind,
            willRetry: { failure, wait in
                if case .status(429, let retryAfter) = failure.outcome {
                    await self.rateLimiter.didReceiveTooManyRequests(retryAfter: retryAfter)
                }
                self.logger.info(
                    "Retrying after a transient failure.",
                    metadata: [
                        "request": .string(label),
                        "cause": .string(failure.error.description),
                        "wait": .string(FullStoryAPIError.format(wait)),
                    ]
                )
            }
        ) { attempt in
            try await self.rateLimiter.acquire()
            var request = HTTPClientRequest(url: target)
            request.method = method
            request.headers.add(name: "Authorization", value: self.authorizationValue)
            request.headers.add(name: "Accept", value: "application/json")
            request.headers.add(name: "User-Agent", value: "segsync")
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: body))
            }
            let started = ContinuousClock.now
            let (status, headers, data) = try await self.exchange(
                request, kind: kind, label: label, attempt: attempt, beforeSending: beforeSending)
            self.measureClock(headers)
            self.logger.debug(
                "API call answered.",
                metadata: [
                    "request": .string(label), "status": .stringConvertible(status),
                    "took": .string(FullStoryAPIError.format(ContinuousClock.now - started)),
                ]
            )
            return try self.interpret(status: status, headers: headers, body: data, notFound: notFound)
        }
    }

    /// Sends one request and collects its answer (at most 32 MiB). A failure to get one
    /// is an ``AttemptFailure`` that says whether it may be retried.
    private func exchange(_ request: HTTPClientRequest, kind: RetryPolicy.RequestKind, label: String, attempt: Int,
                          beforeSending: (@Sendable () async throws -> Void)?) async throws
        -> (status: Int, headers: HTTPHeaders, body: Data) {
        let exchange = { @Sendable [httpClient = self.httpClient, timeout = self.configuration.requestTimeout] in
            let response = try await httpClient.execute(request, timeout: TimeAmount(timeout))
            let buffer = try await response.body.collect(upTo: 32 * 1024 * 1024)
            return (Int(response.status.code), response.headers, Data(buffer.readableBytesView))
        }
        // A cancellation before a create is sent sends nothing. The hook's own errors (an
        // intent that could not be recorded) are its caller's, never taken for a network
        // failure: nothing was sent.
        if kind == .createExport { try Task.checkCancellation() }
        try await beforeSending?()
        do {
            guard kind == .createExport else { return try await exchange() }
            // Once a create is sent, its answer carries the only copy of the new
            // operation's id: cancellation (Ctrl-C) must not drop it. The exchange runs
            // in a task of its own, which cancellation does not reach, and ends within
            // the request timeout.
            return try await Task { try await exchange() }.value
        } catch let error as FullStoryAPIError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch is NIOTooManyBytesError {
            throw FullStoryAPIError.unexpectedResponse(status: 200, detail: "the answer is larger than 32 MiB")
        } catch {
            let (outcome, cause) = TransportFailure.classify(error)
            logger.debug(
                "Request failed.",
                metadata: ["request": .string(label), "cause": .string(cause), "attempt": .stringConvertible(attempt)])
            throw AttemptFailure(outcome: outcome, error: .transport(cause: cause))
        }
    }

    /// Keeps the server's clock offset from a response's `Date` header: the header has
    /// whole seconds, so the offset is good to about a second (what an intent's window
    /// is widened by, beside the offset itself).
    func measureClock(_ headers: HTTPHeaders) {
        guard let raw = headers.first(name: "Date"), let server = HTTPDate.parse(raw) else { return }
        let local = configuration.retryPolicy.wallNow()
        // The header is the second the server sent it in, rounded down: its middle is the best guess.
        let offset = server.timeIntervalSince(local) + 0.5
        measuredOffset.withLockedValue { $0 = offset }
    }

    /// The server's `Retry-After`, if it sent a readable one. A value past
    /// ``RetryPolicy/retryAfterCap`` is capped, and said so in the log.
    func retryAfter(in headers: HTTPHeaders) -> Duration? {
        guard let raw = headers.first(name: "Retry-After") else { return nil }
        guard let value = RetryPolicy.readRetryAfter(raw, now: configuration.retryPolicy.wallNow()) else {
            logger.info("Ignoring an unreadable Retry-After header.", metadata: ["value": .string(FullStoryAPIError.clip(raw, to: 40))])
            return nil
        }
        if value.capped {
            logger.warning(
                "The server asked to wait longer than segsync ever waits; capping the wait.",
                metadata: [
                    "retry-after": .string(FullStoryAPIError.clip(raw, to: 40)),
                    "cap": .string(FullStoryAPIError.format(RetryPolicy.retryAfterCap)),
                ])
        }
        return value.wait
    }

    /// Maps a status to a value or an error. Retryable ones become ``AttemptFailure``.
    func interpret(status: Int, headers: HTTPHeaders, body: Data, notFound: FullStoryAPIError) throws -> Data {
        let retryAfter = retryAfter(in: headers)
        switch status {
        case 200...299:
            return body
        case 401, 403:
            throw FullStoryAPIError.unauthorized(
                keyEnvironmentVariable: configuration.keyEnvironmentVariable,
                message: WireError.message(in: body)
            )
        case 404:
            throw notFound
        case 429:
            throw AttemptFailure(
                outcome: .status(429, retryAfter: retryAfter), error: .rateLimited(retryAfter: retryAfter))
        case 400...499:
            throw FullStoryAPIError.badRequest(
                message: WireError.message(in: body) ?? "HTTP \(status) without a message.")
        case 500...599:
            throw AttemptFailure(
                outcome: .status(status, retryAfter: retryAfter),
                error: .serverError(status: status, message: WireError.message(in: body))
            )
        default:
            throw FullStoryAPIError.unexpectedResponse(
                status: status, detail: "an HTTP status segsync does not expect here")
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
