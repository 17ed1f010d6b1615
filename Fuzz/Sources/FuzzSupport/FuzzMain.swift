import CFuzzing
import Foundation

/// A fuzz target's `main`: with `-DFUZZING` (`Fuzz/run`) libFuzzer drives `target`;
/// otherwise the files named on the command line are replayed through it, e.g. a crash's
/// reproducer or the seed corpus.
public func fuzzMain(_ target: @escaping @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) throws -> Never {
    #if FUZZING
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, target))
    #else
    for path in CommandLine.arguments.dropFirst() {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        _ = bytes.withUnsafeBufferPointer { target($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
    }
    print("replayed \(CommandLine.arguments.count - 1) input(s) without a crash")
    exit(0)
    #endif
}
