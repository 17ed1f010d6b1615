import Crypto
import Foundation
import SegSyncVocabulary

/// AWS Signature Version 4 for S3 and S3-compatible stores, written here because no Swift
/// AWS SDK is available to this project. Checked against botocore's `S3SigV4Auth`
/// (`Tests/ObjectStoreTests/sign_oracle.py`): the same request signed at the same instant
/// must give the same `Authorization` header, byte for byte.
///
/// S3's flavour: the path is signed exactly as sent (already percent-encoded, never
/// normalised or encoded twice), and `x-amz-content-sha256` is always signed.
public struct SigV4: Sendable {
    /// An access key, its secret and, for temporary credentials, the session token.
    public struct Credentials: Sendable, Equatable, CustomStringConvertible {
        public var accessKeyID: String
        public var secretAccessKey: String
        public var sessionToken: String?

        public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }

        /// Never the secret or the token.
        public var description: String { "access key \(accessKeyID)" }
    }

    /// What the body's hash is declared as.
    public enum Payload: Sendable, Equatable {
        /// The hex SHA-256 of the whole body (an empty body is the hash of nothing).
        case sha256(String)
        /// The body is not signed: over TLS with its own checksum header, as S3 allows.
        case unsigned

        /// The hash of `bytes`.
        public static func of(_ bytes: some DataProtocol) -> Payload { .sha256(SHA256.hash(data: Data(bytes)).hex) }

        var header: String {
            switch self {
            case .sha256(let hex): hex
            case .unsigned: "UNSIGNED-PAYLOAD"
            }
        }
    }

    public var credentials: Credentials
    public var region: String
    public var service: String

    public init(credentials: Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// Headers that are never signed: a proxy or the HTTP client may change them.
    static let unsigned: Set<String> = ["expect", "user-agent", "x-amzn-trace-id", "authorization"]

    /// Signs a request: returns `headers` with `host` (when missing), `x-amz-date`,
    /// `x-amz-content-sha256`, `x-amz-security-token` (with a session token) and
    /// `authorization` added. `url` must be as it will be sent: path and query already
    /// percent-encoded (``S3Path/encode(_:)``).
    public func sign(method: String, url: URL, headers: [(name: String, value: String)], payload: Payload,
                     date: Date) -> [(name: String, value: String)] {
        let stamp = Self.timestamp(date)
        let day = String(stamp.prefix(8))
        var signed = headers.filter { !["x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "authorization"].contains($0.name.lowercased()) }
        if !signed.contains(where: { $0.name.lowercased() == "host" }) { signed.append(("host", Self.host(of: url))) }
        signed.append(("x-amz-date", stamp))
        if let token = credentials.sessionToken { signed.append(("x-amz-security-token", token)) }
        signed.append(("x-amz-content-sha256", payload.header))

        // Canonical headers: names lower-cased, values trimmed with inner runs of spaces
        // folded, repeated names joined with commas, sorted by name.
        var byName: [String: [String]] = [:]
        for (name, value) in signed where !Self.unsigned.contains(name.lowercased()) {
            byName[name.lowercased(), default: []].append(value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " "))
        }
        let names = byName.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(byName[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let canonicalRequest = [
            method.uppercased(),
            Self.canonicalPath(url),
            Self.canonicalQuery(url),
            canonicalHeaders,
            signedHeaders,
            payload.header,
        ].joined(separator: "\n")

        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", stamp, scope, SHA256.hash(data: Data(canonicalRequest.utf8)).hex].joined(separator: "\n")
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = Data(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key)).hex
        signed.append(("authorization",
                       "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"))
        return signed
    }

    /// `20261204T120000Z`: the one time format (``Timestamp``) without its separators.
    static func timestamp(_ date: Date) -> String {
        let whole = Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
        return Timestamp.format(whole).filter { $0 != "-" && $0 != ":" }
    }

    /// `host[:port]` as the `Host` header carries it: the default port left out.
    static func host(of url: URL) -> String {
        let host = url.host ?? ""
        let shown = host.contains(":") ? "[\(host)]" : host
        guard let port = url.port, !(url.scheme == "https" && port == 443), !(url.scheme == "http" && port == 80) else { return shown }
        return "\(shown):\(port)"
    }

    /// The path exactly as sent; `/` when empty.
    static func canonicalPath(_ url: URL) -> String {
        let path = URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedPath ?? ""
        return path.isEmpty ? "/" : path
    }

    /// The query's `key=value` pairs as sent, sorted by key and then value.
    static func canonicalQuery(_ url: URL) -> String {
        guard let query = URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedQuery, !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> (String, String) in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
        return pairs.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }
}

/// Object keys and query values as S3 wants them in a URL.
public enum S3Path {
    /// RFC 3986's unreserved characters are kept, `/` too unless `keepSlash` is false;
    /// every other byte of the UTF-8 is `%XX` in upper case.
    public static func encode(_ text: String, keepSlash: Bool = true) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                result.append("/")
            default:
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }
}

extension Sequence where Element == UInt8 {
    /// Lower-case hex, two digits a byte.
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}

extension Digest {
    var hex: String { Array(self).hex }
}
