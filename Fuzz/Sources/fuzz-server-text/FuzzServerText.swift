import CFuzzing
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

/// With `-DFUZZING` (`Fuzz/run`), libFuzzer drives the target; otherwise the program
/// replays the files named on its command line, e.g. a crash's reproducer or the corpus.
@main
struct Main {
    static func main() throws {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzServerText(data ?? UnsafePointer(bitPattern: 1)!, size) })
        #else
        for path in CommandLine.arguments.dropFirst() {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            _ = bytes.withUnsafeBufferPointer { fuzzServerText($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
        }
        print("replayed \(CommandLine.arguments.count - 1) input(s) without a crash")
        #endif
    }
}
