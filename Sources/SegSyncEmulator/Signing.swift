import Crypto
import Foundation

/// Signs and checks everything the emulator hands out (operation ids, search export ids,
/// download links), so a new emulator process with the same seed and API key can answer
/// for ids an earlier one issued: all state lives in the id itself, none on the server.
struct Signer: Sendable {
    private let key: SymmetricKey

    init(apiKey: String, seed: UInt64) {
        let material = SHA256.hash(data: Data("segsync-emulator\u{0}\(apiKey)\u{0}\(seed)".utf8))
        key = SymmetricKey(data: Data(material))
    }

    /// `<base64url(payload)>.<base64url(mac)>`
    func seal<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let payload = (try? encoder.encode(value)) ?? Data()
        let body = Base64URL.encode(payload)
        return body + "." + Base64URL.encode(mac(body))
    }

    /// The value in a sealed token, or `nil` if it was not issued with this key.
    func open<T: Decodable>(_ token: String, as type: T.Type) -> T? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let tag = Base64URL.decode(String(parts[1])),
            HMAC<SHA256>.isValidAuthenticationCode(tag, authenticating: Data(parts[0].utf8), using: key),
            let payload = Base64URL.decode(String(parts[0]))
        else { return nil }
        return try? JSONDecoder().decode(type, from: payload)
    }

    /// Hex signature of a download link's token and expiry.
    func linkSignature(token: String, expires: Int64) -> String {
        mac("\(token)|\(expires)").map { String(format: "%02x", $0) }.joined()
    }

    func isValidLinkSignature(_ signature: String, token: String, expires: Int64) -> Bool {
        // Compare MACs, not strings, to keep the comparison constant-time.
        guard let given = Self.hexBytes(signature) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(
            given, authenticating: Data("\(token)|\(expires)".utf8), using: key)
    }

    private func mac(_ text: some StringProtocol) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key))
    }

    private static func hexBytes(_ hex: String) -> Data? {
        guard hex.count % 2 == 0 else { return nil }
        var bytes = Data(capacity: hex.count / 2)
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}

enum Base64URL {
    static func encode(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

/// SplitMix64: tiny, fast and fully determined by its seed.
struct SplitMix64: Sendable {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    mutating func nextUnit() -> Double {
        Double(next() >> 11) / Double(1 << 53)
    }

    mutating func next(below bound: Int) -> Int {
        Int(next() % UInt64(max(bound, 1)))
    }
}

extension UInt64 {
    /// A stable 64-bit digest of `text` (the first 8 bytes of its SHA-256).
    init(digestOf text: String) {
        let digest = Array(SHA256.hash(data: Data(text.utf8)))
        self = digest.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
}
