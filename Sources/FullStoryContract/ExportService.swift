import Foundation

/// What running an export takes of the Segments Export API: create it, follow its
/// operation, and fetch its file. ``FullStoryClient`` is the real one, over HTTP; the
/// executor and the refresh take any, so their logic is tested in-process with a fake
/// (the emulator stays the integration test of the real one).
public protocol ExportService: Sendable {
    /// Creates an export; the operation it starts. Not retried once it may have reached
    /// the server.
    func createExport(_ request: ExportRequest) async throws -> ExportOperation
    /// Creates an export, calling `beforeSending` right before each attempt's request
    /// leaves (after any wait for the rate limiter or a retry): nothing has been sent
    /// when it is called, and if it throws, nothing is. A create is retried only when
    /// the server surely made nothing, so only the last attempt can have made an export.
    func createExport(_ request: ExportRequest, beforeSending: @escaping @Sendable () async throws -> Void) async throws
        -> ExportOperation
    /// The operation's state now; ``FullStoryAPIError/operationNotFound(operationID:)``
    /// once the API has forgotten it.
    func getOperation(_ id: String) async throws -> ExportOperation
    /// Where a completed operation's file can be fetched.
    func downloadLink(for operation: ExportOperation) async throws -> DownloadLink
    /// Fetches `url` into `finalPath` (through `finalPath.partial`, hashed and fsynced),
    /// telling `progress` the bytes received and the announced total as it goes.
    /// `digestContent` asks for ``DownloadResult/contentSHA256`` too.
    func download(_ url: URL, to finalPath: String, decompress: Bool, digestContent: Bool,
                  progress: @escaping @Sendable (_ received: Int64, _ total: Int64?) -> Void) async throws -> DownloadResult
    /// Fetches `url` into `stream` as it arrives (an upload, with no file in between):
    /// hashed, gunzipped when asked, resumed after drops as a file download is. The result
    /// is that of the bytes the stream received.
    func download(_ url: URL, into stream: any DownloadStream, decompress: Bool, digestContent: Bool,
                  progress: @escaping @Sendable (_ received: Int64, _ total: Int64?) -> Void) async throws -> DownloadResult
    /// One page of the account's search-export operations, newest first, from
    /// `pageToken` (nil: the first page); nil when this API cannot list operations (the
    /// seed dialect). What finds an export whose create answer was lost.
    func listExportOperations(pageToken: String?) async throws -> OperationPage?
    /// The server's clock minus this machine's, in seconds, as last measured from a
    /// response's `Date` header (whole seconds: the header's resolution); nil before any.
    var serverClockOffset: Double? { get }
    /// The longest a create waits for its answer: how late after it was sent an export
    /// it made can have been created, when no answer came.
    var createTimeout: Duration { get }
}

extension ExportService {
    public func createExport(_ request: ExportRequest, beforeSending: @escaping @Sendable () async throws -> Void) async throws
        -> ExportOperation {
        try await beforeSending()
        return try await createExport(request)
    }
    public func listExportOperations(pageToken: String?) async throws -> OperationPage? { nil }
    public var serverClockOffset: Double? { nil }
    public var createTimeout: Duration { .seconds(60) }
}

/// Where a download's bytes go when not to a file: an object-store upload, say. Bytes
/// arrive in order, one call at a time.
public protocol DownloadStream: Sendable {
    func write(_ bytes: [UInt8]) async throws
    /// Throws away every byte written so far: the server is sending the body again
    /// from its first byte.
    func restart() async throws
}

