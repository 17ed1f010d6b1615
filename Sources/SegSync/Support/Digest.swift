import Crypto
import Foundation

extension SHA256 {
    /// Lower-case hex digest, the spelling used everywhere segsync records a checksum.
    static func hex(_ data: some DataProtocol) -> String {
        SHA256.hash(data: data).hexString
    }
}

extension Digest {
    var hexString: String { hexString(bytes: Self.byteCount) }

    /// The hex of the digest's first `bytes` bytes.
    func hexString(bytes: Int) -> String {
        withUnsafeBytes { digest in
            String(unsafeUninitializedCapacity: bytes * 2) { buffer in
                let digits: StaticString = "0123456789abcdef"
                let table = digits.utf8Start
                for index in 0..<bytes {
                    buffer[2 * index] = table[Int(digest[index] >> 4)]
                    buffer[2 * index + 1] = table[Int(digest[index] & 0x0f)]
                }
                return bytes * 2
            }
        }
    }
}
