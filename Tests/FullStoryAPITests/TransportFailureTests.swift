import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import Testing

@testable import FullStoryAPI

/// Which transport errors mean a request was surely never sent: only those let a create
/// be sent again (a repeat of one that reached the server is a second export).
@Suite(.timeLimit(.minutes(1))) struct TransportFailureTests {
    @Test("a failed TLS handshake was never sent; a TLS failure while the answer was awaited may have been")
    func tls() {
        #expect(TransportFailure.classify(NIOSSLError.handshakeFailed(.sslError([]))).0 == .connectFailed)
        #expect(TransportFailure.classify(NIOSSLError.unableToValidateCertificate).0 == .connectFailed)
        #expect(TransportFailure.classify(NIOSSLError.uncleanShutdown).0 == .connectionLost)
        #expect(TransportFailure.classify(NIOSSLError.readInInvalidTLSState).0 == .connectionLost)
        #expect(TransportFailure.classify(BoringSSLError.sslError([])).0 == .connectionLost)
    }

    @Test("a refused or timed-out connect was never sent; a reset or a read timeout may have been")
    func connections() {
        #expect(TransportFailure.classify(HTTPClientError.connectTimeout).0 == .connectFailed)
        #expect(TransportFailure.classify(IOError(errnoCode: ECONNREFUSED, reason: "connect")).0 == .connectFailed)
        #expect(TransportFailure.classify(IOError(errnoCode: ECONNRESET, reason: "read")).0 == .connectionLost)
        #expect(TransportFailure.classify(HTTPClientError.readTimeout).0 == .connectionLost)
        #expect(TransportFailure.classify(HTTPClientError.remoteConnectionClosed).0 == .connectionLost)
    }
}
