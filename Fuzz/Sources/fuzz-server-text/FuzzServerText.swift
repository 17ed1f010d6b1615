import FuzzSupport
import Foundation
@_spi(Fuzzing) import FullStoryAPI

/// libFuzzer target: every decoder of server text (operation, segment and results JSON,
/// error bodies, Retry-After, Content-Range, timestamps). The first byte picks the
/// decoder, the rest is what the server sent.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzServerText(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let decoders = ServerText.Decoder.allCases
    let decoder = decoders[Int(data[0]) % decoders.count]
    ServerText.decode(decoder, Data(UnsafeBufferPointer(start: data + 1, count: size - 1)))
    return 0
}

@main
struct Main {
    static func main() throws {
        try fuzzMain { data, size in fuzzServerText(data ?? UnsafePointer(bitPattern: 1)!, size) }
    }
}
