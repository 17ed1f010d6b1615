import Foundation

/// Every way a call to the FullStory API can fail, each with a sentence a user can act on.
///
/// No NIO error, HTTP client error or `DecodingError` reaches a user through this type:
/// they are turned into a short cause at the boundary. Secrets (the API key, signed link
/// query strings) never appear in a description.
public enum FullStoryAPIError: Error, Sendable, Hashable, CustomStringConvertible, LocalizedError {
    /// 401/403 from the API: the key is missing, wrong, or lacks the needed role.
    case unauthorized(keyEnvironmentVariable: String, message: String?)
    /// No API key in the environment variable that should hold it.
    case missingAPIKey(keyEnvironmentVariable: String)
    /// The endpoint is not a usable URL, or is plain HTTP to a host that is not loopback.
    case invalidEndpoint(String)
    case segmentNotFound(segmentID: String)
    case operationNotFound(operationID: String)
    /// The production `searchExportId` is unknown or no longer available.
    case searchExportNotFound(searchExportID: String)
    /// 400 from the server; carries the server's message.
    case badRequest(message: String)
    /// A request this client refused to send because it cannot be right (e.g. a time
    /// range that ends before it starts, a format the dialect lacks).
    case invalidRequest(message: String)
    /// 429 after retries ran out; `retryAfter` is what the server last asked for.
    case rateLimited(retryAfter: Duration?)
    /// 5xx after retries ran out.
    case serverError(status: Int, message: String?)
    /// The connection failed, timed out or was reset; `cause` is short and readable.
    case transport(cause: String)
    /// A create-export request may have reached the server, but no answer came back.
    ///
    /// Retrying blindly could start a second export, so the client stops and lets the
    /// caller decide (see ``RetryPolicy``).
    /// `answered`: a success arrived that could not be read (an unreadable 2xx), so the
    /// export was made before it; otherwise (a reset, a timeout, a 5xx, which a gateway
    /// can send before the service behind it acts) it may have been made up to the
    /// request timeout after the request was sent.
    case createOutcomeUnknown(cause: String, answered: Bool = false)
    /// The signed download link was refused (403/404/410): fetch a fresh one.
    case expiredDownloadLink(url: String)
    /// The download ended before all the promised bytes arrived, even after resuming.
    case truncatedDownload(url: String, expectedBytes: Int64?, receivedBytes: Int64)
    /// The downloaded bytes are not what they claim to be (e.g. broken gzip).
    case invalidDownload(url: String, reason: String)
    /// The server answered something this client cannot read.
    case unexpectedResponse(status: Int, detail: String)
    /// Writing the downloaded file failed.
    case fileSystem(path: String, reason: String)
    /// The disk (or quota) holding `folder` is full. Worth trying again once there is
    /// space: the finished export is still there to download.
    case diskFull(folder: String)

    public var description: String {
        switch self {
        case .unauthorized(let variable, let message):
            let said = message.map { " (the server said: \(Self.clip($0)))" } ?? ""
            return "The FullStory API rejected the API key from \(variable)\(said). "
                + "Set \(variable) to a valid Admin or Architect API key."
        case .missingAPIKey(let variable):
            return "No FullStory API key found: set the environment variable \(variable) "
                + "to an Admin or Architect API key."
        case .invalidEndpoint(let reason):
            return reason
        case .segmentNotFound(let id):
            return "Segment '\(id)' does not exist, or this API key cannot see it."
        case .operationNotFound(let id):
            return "Operation '\(Self.clip(id, to: 60))' does not exist (it may have expired on the server)."
        case .searchExportNotFound(let id):
            return
                "Export results '\(Self.clip(id, to: 60))' were not found; the export may have expired on the server."
        case .badRequest(let message):
            return "The FullStory API refused the request: \(Self.sentence(message))"
        case .invalidRequest(let message):
            return "This request cannot be sent: \(Self.sentence(message))"
        case .rateLimited(let retryAfter):
            let wait = retryAfter.map { " (it asked to wait \(Self.format($0)))" } ?? ""
            return
                "The FullStory API kept answering 'too many requests'\(wait); try again later or lower api.rateLimit."
        case .serverError(let status, let message):
            let said = message.map { ": \(Self.clip($0))" } ?? ""
            return "The FullStory API failed with HTTP \(status)\(said). This is usually temporary; try again later."
        case .transport(let cause):
            return "Could not talk to the FullStory API: \(cause)."
        case .createOutcomeUnknown(let cause, _):
            return "The request to create an export may have reached the server, but its outcome is unknown (\(cause)); "
                + "it was not retried because that could start a second export."
        case .expiredDownloadLink(let url):
            return "The download link \(url) has expired or was refused; a fresh link is needed."
        case .truncatedDownload(let url, let expected, let received):
            let of = expected.map { " of \($0)" } ?? ""
            return "The download from \(url) stopped after \(received)\(of) bytes; no file was written."
        case .invalidDownload(let url, let reason):
            return "The download from \(url) is not usable: \(reason); no file was written."
        case .unexpectedResponse(let status, let detail):
            return "The FullStory API answered HTTP \(status) with a response segsync cannot read: \(detail)."
        case .fileSystem(let path, let reason):
            return "Could not write \(path): \(reason)."
        case .diskFull(let folder):
            return "The disk holding \(folder) is full; free some space and run apply again: finished exports are then downloaded without exporting them again."
        }
    }

    public var errorDescription: String? { description }

    /// Worth trying again later with the same inputs: rate limits, server errors, network
    /// trouble, expired links (after fetching a new one) and truncated downloads.
    public var isTransient: Bool {
        switch self {
        case .rateLimited, .serverError, .transport, .expiredDownloadLink, .truncatedDownload, .diskFull:
            return true
        case .unauthorized, .missingAPIKey, .invalidEndpoint, .segmentNotFound, .operationNotFound,
            .searchExportNotFound, .badRequest, .invalidRequest, .createOutcomeUnknown, .invalidDownload,
            .unexpectedResponse, .fileSystem:
            return false
        }
    }

    /// `text` clipped, ending with a full stop.
    package static func sentence(_ text: String) -> String {
        let clipped = clip(text)
        return clipped.hasSuffix(".") || clipped.hasSuffix("…") ? clipped : clipped + "."
    }

    package static func clip(_ text: String, to limit: Int = 300) -> String {
        let oneLine = text.replacingOccurrences(of: "\n", with: " ")
        guard oneLine.count > limit else { return oneLine }
        return String(oneLine.prefix(limit)) + "…"
    }

    package static func format(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        if seconds < 1 { return "\(Int((seconds * 1000).rounded())) ms" }
        if seconds == seconds.rounded() { return "\(Int(seconds)) s" }
        return String(format: "%.1f s", seconds)
    }
}
