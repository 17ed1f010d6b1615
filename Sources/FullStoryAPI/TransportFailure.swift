import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
import FullStoryContract
#endif

/// Turns an HTTP-client or NIO error into a retry outcome and a short readable cause.
///
/// The outcome matters for creating exports: `.connectFailed` means the request was never
/// sent (safe to repeat), `.connectionLost` means it may have reached the server.
enum TransportFailure {
    static func classify(_ error: any Error) -> (RetryPolicy.Outcome, String) {
        if let error = error as? HTTPClientError { return classify(error) }
        if let error = error as? NIOConnectionError {
            let refused = error.connectionErrors.contains { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }
            if refused { return (.connectFailed, "the connection to \(error.host):\(error.port) was refused") }
            if error.dnsAError != nil || error.dnsAAAAError != nil, error.connectionErrors.isEmpty {
                return (.connectFailed, "the host name \(error.host) could not be resolved")
            }
            return (.connectFailed, "could not connect to \(error.host):\(error.port)")
        }
        if let error = error as? ChannelError {
            switch error {
            case .connectTimeout: return (.connectFailed, "connecting timed out")
            case .ioOnClosedChannel, .alreadyClosed, .eof, .outputClosed: return (.connectionLost, "the connection was closed")
            default: return (.connectionLost, "the connection failed")
            }
        }
        if let error = error as? IOError { return classify(errno: error.errnoCode) }
        if error is HTTPParserError {
            // Raised when the connection closes before the body promised by Content-Length
            // arrived, or the server sent something that is not HTTP.
            return (.connectionLost, "the connection ended in the middle of a response")
        }
        if let error = error as? NIOSSLError { return classify(error) }
        // Anything else (a raw BoringSSL error, a TLS close that timed out) may come after
        // the request went out: a create is not repeated on it.
        return (.connectionLost, "a network error occurred (\(String(describing: type(of: error))))")
    }

    /// Only a failed handshake (or a certificate refused in it) means the request was
    /// never sent; an unclean shutdown or a read in a broken TLS state can come after it
    /// was, while the answer was awaited.
    static func classify(_ error: NIOSSLError) -> (RetryPolicy.Outcome, String) {
        switch error {
        case .handshakeFailed, .unableToValidateCertificate, .noCertificateToValidate, .cannotMatchULabel, .cannotFindPeerIP,
             .failedToLoadCertificate, .failedToLoadPrivateKey, .noSuchFilesystemObject, .unableToAllocateBoringSSLObject:
            return (.connectFailed, "the TLS handshake failed")
        case .uncleanShutdown:
            return (.connectionLost, "the server closed the TLS connection without a close_notify")
        case .readInInvalidTLSState, .writeDuringTLSShutdown, .shutdownFailed:
            return (.connectionLost, "the TLS connection failed")
        }
    }

    static func classify(_ error: HTTPClientError) -> (RetryPolicy.Outcome, String) {
        switch error {
        case .connectTimeout, .getConnectionFromPoolTimeout: return (.connectFailed, "connecting timed out")
        case .tlsHandshakeTimeout: return (.connectFailed, "the TLS handshake timed out")
        case .readTimeout: return (.connectionLost, "the server stopped sending (read timeout)")
        case .writeTimeout: return (.connectionLost, "sending the request timed out")
        case .deadlineExceeded: return (.connectionLost, "no answer before the request timeout")
        case .remoteConnectionClosed: return (.connectionLost, "the server closed the connection")
        case .cancelled: return (.connectionLost, "the request was cancelled")
        default: return (.connectionLost, "the HTTP request failed (\(error.shortDescription))")
        }
    }

    static func classify(errno code: Int32) -> (RetryPolicy.Outcome, String) {
        switch code {
        case ECONNREFUSED: return (.connectFailed, "the connection was refused")
        case ENETUNREACH, EHOSTUNREACH: return (.connectFailed, "the network or host is unreachable")
        case ECONNRESET: return (.connectionLost, "the connection was reset")
        case EPIPE: return (.connectionLost, "the connection was closed while sending")
        case ETIMEDOUT: return (.connectionLost, "the connection timed out")
        default: return (.connectionLost, "a network error occurred (\(String(cString: strerror(code))))")
        }
    }
}

extension HTTPClientError {
    /// `HTTPClientError.remoteConnectionClosed` → `remoteConnectionClosed`.
    fileprivate var shortDescription: String {
        let text = String(describing: self)
        if let dot = text.lastIndex(of: ".") {
            return String(text[text.index(after: dot)...])
        }
        return text
    }
}
