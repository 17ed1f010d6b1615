import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// A client for the FullStory Segments Export API, in either ``Dialect``.
///
/// One client owns one `HTTPClient` (one connection pool) used by every call, including
/// downloads, and one ``RateLimiter`` that every API call goes through. Call
/// ``shutdown()`` when done, or use ``withClient(_:_:)`` which does it for you.
///
/// Every failure is a ``FullStoryAPIError``; transient ones are retried first according
/// to ``Configuration/retryPolicy`` (see ``RetryPolicy`` for why creating an export is
/// treated differently).
public final class FullStoryClient: Sendable {
    /// Everything a client needs; the key and endpoint usually come from the environment
    /// (see ``fromEnvironment(endpoint:dialect:keyEnvironmentVariable:environment:)``).
    public struct Configuration: Sendable {
        public var endpoint: URL
        public var dialect: Dialect
        public var apiKey: APIKey
        /// Named in the "key rejected" error so the user knows which variable to fix.
        public var keyEnvironmentVariable: String
        public var rateLimit: RateLimit
        public var retryPolicy: RetryPolicy
        /// How long to wait for a connection.
        public var connectTimeout: Duration
        /// How long an API call may take until the response headers arrive.
        public var requestTimeout: Duration
        /// How long a connection may stay silent, also in the middle of a download.
        public var readTimeout: Duration
        /// How many times a dropped or short download is resumed (or restarted) before
        /// it is reported as ``FullStoryAPIError/truncatedDownload(url:expectedBytes:receivedBytes:)``.
        public var maxDownloadResumes: Int
        public var logger: Logger

        public init(
            endpoint: URL = APIEndpoint.production,
            dialect: Dialect = .seed,
            apiKey: APIKey,
            keyEnvironmentVariable: String = APIKey.defaultEnvironmentVariable,
            rateLimit: RateLimit = RateLimit(),
            retryPolicy: RetryPolicy = RetryPolicy(),
            connectTimeout: Duration = .seconds(10),
            requestTimeout: Duration = .seconds(60),
            readTimeout: Duration = .seconds(60),
            maxDownloadResumes: Int = 5,
            logger: Logger = Logger(label: "segsync.api")
        ) {
            self.endpoint = endpoint
            self.dialect = dialect
            self.apiKey = apiKey
            self.keyEnvironmentVariable = keyEnvironmentVariable
            self.rateLimit = rateLimit
            self.retryPolicy = retryPolicy
            self.connectTimeout = connectTimeout
            self.requestTimeout = requestTimeout
            self.readTimeout = readTimeout
            self.maxDownloadResumes = maxDownloadResumes
            self.logger = logger
        }

        /// A configuration whose key comes from `keyEnvironmentVariable` and whose endpoint
        /// is `FULLSTORY_API_URL` if set, else `endpoint`, else production.
        public static func fromEnvironment(
            endpoint: String? = nil,
            dialect: Dialect = .seed,
            keyEnvironmentVariable: String = APIKey.defaultEnvironmentVariable,
            environment: [String: String] = ProcessInfo.processInfo.environment
        ) throws(FullStoryAPIError) -> Configuration {
            Configuration(
                endpoint: try APIEndpoint.resolve(configured: endpoint, environment: environment),
                dialect: dialect,
                apiKey: try APIKey.fromEnvironment(keyEnvironmentVariable, environment: environment),
                keyEnvironmentVariable: keyEnvironmentVariable
            )
        }
    }

    public let configuration: Configuration
    /// Shared by every API call of this client.
    public let rateLimiter: RateLimiter
    let httpClient: HTTPClient
    var logger: Logger { configuration.logger }

    /// Fails with ``FullStoryAPIError/invalidEndpoint(_:)`` for anything but https, or
    /// plain http to a loopback host.
    ///
    /// - Parameter rateLimiter: a limiter to use instead of a new one made from
    ///   ``Configuration/rateLimit``, e.g. to share one budget between clients or to
    ///   observe it in tests.
    public init(configuration: Configuration, rateLimiter: RateLimiter? = nil) throws(FullStoryAPIError) {
        _ = try APIEndpoint.validate(configuration.endpoint.absoluteString)
        self.configuration = configuration
        self.rateLimiter = rateLimiter ?? RateLimiter(configuration.rateLimit)
        var http = HTTPClient.Configuration(
            // Redirects could carry the Authorization header to another host.
            redirectConfiguration: .disallow,
            timeout: .init(
                connect: TimeAmount(configuration.connectTimeout),
                read: TimeAmount(configuration.readTimeout)
            )
        )
        // Connection failures are retried by our own RetryPolicy, which knows whether a
        // request was sent; the pool's built-in retry would hide that and add its own waits.
        http.connectionPool.retryConnectionEstablishment = false
        // Downloads are gunzipped by us, hashed as written; never transparently by the client.
        http.decompression = .disabled
        self.httpClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: http)
    }

    /// Closes every connection. The client cannot be used afterwards.
    public func shutdown() async throws {
        try await httpClient.shutdown()
    }

    /// Runs `body` with a new client and shuts it down afterwards, also when `body` throws.
    @discardableResult
    public static func withClient<T: Sendable>(
        _ configuration: Configuration,
        _ body: (FullStoryClient) async throws -> T
    ) async throws -> T {
        let client = try FullStoryClient(configuration: configuration)
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    // MARK: - Segments

    /// Every segment, fetching page after page (`pageSize` per page, 1–100).
    public func listSegments(pageSize: Int = 100) async throws -> [Segment] {
        var all: [Segment] = []
        var token: String?
        var seenTokens: Set<String> = []
        repeat {
            let page = try await listSegmentsPage(limit: pageSize, pageToken: token)
            all.append(contentsOf: page.segments)
            token = page.nextPageToken
            if let token, !seenTokens.insert(token).inserted {
                throw FullStoryAPIError.unexpectedResponse(
                    status: 200,
                    detail: "the segment list repeats a pagination token, so it would never end"
                )
            }
        } while token != nil
        return all
    }

    /// One page of segments. `limit` must be 1–100 (the server's default is 20).
    public func listSegmentsPage(limit: Int? = nil, pageToken: String? = nil) async throws -> SegmentPage {
        if let limit, !(1...100).contains(limit) {
            throw FullStoryAPIError.invalidRequest(message: "the page size must be between 1 and 100, not \(limit).")
        }
        var query: [(String, String)] = []
        if let limit { query.append(("limit", String(limit))) }
        if let pageToken { query.append(("pagination_token", pageToken)) }
        let body = try await send(
            .GET, path: ["segments", "v1"], query: query,
            notFound: .unexpectedResponse(
                status: 404, detail: "there is no segment list at this endpoint; is it the right one")
        )
        return try decode(WireSegmentList.self, from: body, what: "the segment list").page
    }

    public func getSegment(_ id: String) async throws -> Segment {
        let body = try await send(.GET, path: ["segments", "v1", id], notFound: .segmentNotFound(segmentID: id))
        return try decode(WireSegment.self, from: body, what: "segment '\(id)'").segment
    }

    // MARK: - Exports and operations

    /// Starts an export and returns its operation (state PENDING when the server only
    /// answers with an id, as production does).
    ///
    /// Not retried once the request may have reached the server: see ``RetryPolicy``.
    /// An answer that never came is ``FullStoryAPIError/createOutcomeUnknown(cause:)``.
    public func createExport(_ request: ExportRequest) async throws -> ExportOperation {
        let wire = try WireCreateExportRequest(request, dialect: configuration.dialect)
        let body = try await send(
            .POST,
            path: ["segments", "v1", "exports"],
            body: wire.encoded(),
            kind: .createExport,
            notFound: .segmentNotFound(segmentID: request.segmentID)
        )
        // Production answers only {"operationId"}: no state means PENDING here.
        return try readOperation(body, what: "the new export's operation", stateExpected: false)
    }

    public func getOperation(_ id: String) async throws -> ExportOperation {
        let body = try await send(.GET, path: ["operations", "v1", id], notFound: .operationNotFound(operationID: id))
        return try readOperation(body, what: "operation '\(FullStoryAPIError.clip(id, to: 60))'", stateExpected: true)
    }

    /// Production only: turns a finished export's `searchExportId` into a signed link
    /// (`GET /search/v1/exports/{id}/results`). Links live about five minutes.
    public func exportResults(searchExportID: String) async throws -> DownloadLink {
        let body = try await send(
            .GET,
            path: ["search", "v1", "exports", searchExportID, "results"],
            notFound: .searchExportNotFound(searchExportID: searchExportID)
        )
        let decoded = try decode(WireExportResults.self, from: body, what: "the export results")
        let url = try APIEndpoint.validate(decoded.location, source: "the download link", use: .downloadLink)
        return DownloadLink(url: url, expires: decoded.expires)
    }

    /// The download link of a completed operation, in either dialect: the operation's own
    /// `downloadUrl`, or a fresh signed link for its `searchExportId`.
    public func downloadLink(for operation: ExportOperation) async throws -> DownloadLink {
        guard operation.state == .completed else {
            throw FullStoryAPIError.invalidRequest(
                message:
                    "operation '\(FullStoryAPIError.clip(operation.id, to: 60))' is \(operation.state), so it has nothing to download yet."
            )
        }
        if let url = operation.results?.downloadURL {
            return DownloadLink(
                url: try APIEndpoint.validate(url.absoluteString, source: "the download link", use: .downloadLink),
                expires: operation.results?.expires)
        }
        if let searchExportID = operation.results?.searchExportID {
            return try await exportResults(searchExportID: searchExportID)
        }
        throw FullStoryAPIError.unexpectedResponse(
            status: 200,
            detail:
                "operation '\(FullStoryAPIError.clip(operation.id, to: 60))' is COMPLETED but names no download (no downloadUrl or searchExportId)"
        )
    }

    /// A new link for an operation, e.g. after ``FullStoryAPIError/expiredDownloadLink(url:)``.
    public func freshDownloadLink(operationID: String) async throws -> DownloadLink {
        try await downloadLink(for: getOperation(operationID))
    }

    // MARK: - Transport

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

    private func decode<T: Decodable>(_ type: T.Type, from body: Data, what: String) throws -> T {
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
    private func send(
        _ method: HTTPMethod,
        path: [String],
        query: [(String, String)] = [],
        body: Data? = nil,
        kind: RetryPolicy.RequestKind = .idempotent,
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
            let (status, headers, data) = try await self.exchange(request, kind: kind, label: label, attempt: attempt)
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
    private func exchange(_ request: HTTPClientRequest, kind: RetryPolicy.RequestKind, label: String, attempt: Int) async throws
        -> (status: Int, headers: HTTPHeaders, body: Data) {
        let exchange = { @Sendable [httpClient = self.httpClient, timeout = self.configuration.requestTimeout] in
            let response = try await httpClient.execute(request, timeout: TimeAmount(timeout))
            let buffer = try await response.body.collect(upTo: 32 * 1024 * 1024)
            return (Int(response.status.code), response.headers, Data(buffer.readableBytesView))
        }
        do {
            guard kind == .createExport else { return try await exchange() }
            // Once a create is sent, its answer carries the only copy of the new
            // operation's id: cancellation (Ctrl-C) must not drop it. The exchange runs
            // in a task of its own, which cancellation does not reach, and ends within
            // the request timeout.
            try Task.checkCancellation()
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
    private func interpret(status: Int, headers: HTTPHeaders, body: Data, notFound: FullStoryAPIError) throws -> Data {
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
