import Crypto
import Foundation
import SegSyncVocabulary

/// AWS Signature Version 4: the `Authorization` header and the `x-amz-*` headers that go
/// with it, for one request at one instant.
///
/// Paths follow S3's rule: each segment percent-encoded once, `/` kept, no dot-segment
/// removal (STS, the other service signed here, is only ever asked at `/`). Checked
/// byte for byte against botocore's `SigV4Auth`/`S3SigV4Auth` in `SigV4OracleTests`.
public struct SigV4: Sendable {
    public var credentials: Credentials
    public var region: String
    /// `s3`, or `sts` for web identity.
    public var service: String

    public init(credentials: Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The request as signed: `path` and `query` not yet percent-encoded, `host` as the
    /// `Host` header carries it (with the port when it is not the scheme's default).
    public struct Request: Sendable {
        public var method: String
        public var host: String
        public var path: String
        public var query: [(name: String, value: String)]
        public var headers: [(name: String, value: String)]

        public init(method: String, host: String, path: String, query: [(name: String, value: String)] = [], headers: [(name: String, value: String)] = []) {
            self.method = method
            self.host = host
            self.path = path
            self.query = query
            self.headers = headers
        }

        /// The path and query as the URL must carry them for the signature to hold.
        public var encodedTarget: String {
            let path = PercentEncoding.encode(path.isEmpty ? "/" : path, keepingSlash: true)
            return query.isEmpty ? path : path + "?" + PercentEncoding.query(query)
        }
    }

    /// What the signature says about the body.
    public enum Payload: Sendable, Hashable {
        /// `UNSIGNED-PAYLOAD`: the body is not covered (S3 over TLS, with a checksum header).
        case unsigned
        /// The hex SHA-256 of the body, computed by the caller.
        case sha256(hex: String)

        /// The hash of `bytes`.
        public static func bytes(_ bytes: some DataProtocol) -> Payload {
            .sha256(hex: SHA256.hash(data: bytes).hex)
        }

        public static let empty = Payload.bytes([UInt8]())

        var value: String {
            switch self {
            case .unsigned: "UNSIGNED-PAYLOAD"
            case .sha256(let hex): hex
            }
        }
    }

    /// The headers to add to `request` (`host`, `x-amz-date`, `x-amz-content-sha256` for
    /// S3, `x-amz-security-token` with session credentials, `authorization`), in that order.
    public func sign(_ request: Request, payload: Payload, at date: Date) -> [(name: String, value: String)] {
        let stamp = Self.timestamp(date)
        var added: [(name: String, value: String)] = []
        if !request.headers.contains(where: { $0.name.lowercased() == "host" }) {
            added.append(("host", request.host))
        }
        added.append(("x-amz-date", stamp))
        if service == "s3" { added.append(("x-amz-content-sha256", payload.value)) }
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }

        // Header names lowercased; values trimmed with inner whitespace runs collapsed;
        // a repeated header's values joined by commas in the order given.
        var canonical: [String: [String]] = [:]
        for (name, value) in request.headers + added {
            let trimmed = value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
            canonical[name.lowercased(), default: []].append(trimmed)
        }
        let names = canonical.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let signedHeaders = names.joined(separator: ";")
        let canonicalRequest = [
            request.method.uppercased(),
            PercentEncoding.encode(request.path.isEmpty ? "/" : request.path, keepingSlash: true),
            PercentEncoding.query(request.query),
            names.map { "\($0):\(canonical[$0]!.joined(separator: ","))\n" }.joined(),
            signedHeaders,
            payload.value,
        ].joined(separator: "\n")

        let day = String(stamp.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", stamp, scope, SHA256.hash(data: Data(canonicalRequest.utf8)).hex].joined(separator: "\n")
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key).hex
        added.append(("authorization", "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"))
        return added
    }

    /// `20261128T000000Z`: the instant to the second, UTC.
    static func timestamp(_ date: Date) -> String {
        let whole = Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
        return String(Timestamp.format(whole).filter { $0 != "-" && $0 != ":" })
    }
}
