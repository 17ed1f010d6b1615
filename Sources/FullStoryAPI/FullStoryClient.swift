import AsyncHTTPClient
import FileIO
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import SegSyncVocabulary
import FullStoryContract

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
        /// How a finished download is made durable and put in place (fsync, rename, fsync
        /// of the folder): the system's calls; tests record their order or fail one.
        public var placement: FileIO.Placement = .system

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
    /// The server's clock minus ours, from the last `Date` header (``serverClockOffset``).
    let measuredOffset = NIOLockedValueBox<Double?>(nil)

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

    /// One segment by id; ``FullStoryAPIError/segmentNotFound(segmentID:)`` when there is none.
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
        try await createExport(request, beforeSending: {})
    }

    public func createExport(_ request: ExportRequest, beforeSending: @escaping @Sendable () async throws -> Void) async throws
        -> ExportOperation {
        let wire = try WireCreateExportRequest(request, dialect: configuration.dialect)
        let body = try await send(
            .POST,
            path: ["segments", "v1", "exports"],
            body: wire.encoded(),
            kind: .createExport,
            beforeSending: beforeSending,
            notFound: .segmentNotFound(segmentID: request.segmentID)
        )
        // Production answers only {"operationId"}: no state means PENDING here.
        do {
            return try readOperation(body, what: "the new export's operation", stateExpected: false)
        } catch FullStoryAPIError.unexpectedResponse(let status, let detail) {
            // A success whose body cannot be read: the export exists, its id is unknown.
            throw FullStoryAPIError.createOutcomeUnknown(
                cause: "the server answered HTTP \(status), but with a body segsync cannot read: \(detail)", answered: true)
        }
    }

    /// The operation's state and progress; ``FullStoryAPIError/operationNotFound(operationID:)``
    /// when the API no longer knows it.
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

    /// One page of search-export operations, newest first (production only: the seed
    /// dialect has no list and gives nil). Listed exports carry no details, only their
    /// id, state and times.
    public func listExportOperations(pageToken: String?) async throws -> OperationPage? {
        guard configuration.dialect == .fullstory else { return nil }
        var query: [(String, String)] = [("type", "SEARCH_EXPORT"), ("limit", "100")]
        if let pageToken { query.append(("pagination_token", pageToken)) }
        let body = try await send(
            .GET, path: ["operations", "v1"], query: query,
            notFound: .unexpectedResponse(status: 404, detail: "there is no operations list at this endpoint"))
        return try decode(WireOperationList.self, from: body, what: "the operations list").page
    }

    public var serverClockOffset: Double? { measuredOffset.withLockedValue { $0 } }

    public var createTimeout: Duration { configuration.requestTimeout }

    /// A new link for an operation, e.g. after ``FullStoryAPIError/expiredDownloadLink(url:)``.
    public func freshDownloadLink(operationID: String) async throws -> DownloadLink {
        try await downloadLink(for: getOperation(operationID))
    }
}
