import Foundation

// The one way ObjectStore writes bytes as text: hex for SigV4, base64 for checksums, and
// percent-encoding with the RFC 3986 unreserved set for paths and query strings.

extension Sequence<UInt8> {
    /// Lowercase hex, as SigV4 wants it.
    package var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Standard base64 with padding, as `x-amz-checksum-sha256` wants it.
    package var base64: String { Data(self).base64EncodedString() }
}

package enum PercentEncoding {
    /// Percent-encodes every byte of the UTF-8 form except `A-Z a-z 0-9 - _ . ~` (and `/`
    /// when `keepingSlash`), with uppercase hex digits.
    package static func encode(_ text: String, keepingSlash: Bool = false) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where keepingSlash:
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(digits[Int(byte >> 4)])
                out.append(digits[Int(byte & 0x0f)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `a=1&b=2`: names and values encoded, pairs sorted by name then value (repeated
    /// names kept), the form SigV4 signs and the URL therefore carries.
    package static func query(_ pairs: [(name: String, value: String)]) -> String {
        pairs.map { (encode($0.name), encode($0.value)) }
            .sorted { $0.0 == $1.0 ? $0.1.utf8.lexicographicallyPrecedes($1.1.utf8) : $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }
}
