import FuzzSupport
import Foundation
import SegSync

/// libFuzzer target: any bytes through libyaml, the manifest decoder, and (for windows
/// small enough to stay fast) the partitions they desire. Diagnostics are fine; a trap
/// or a hang is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let (manifest, diagnostics) = ManifestLoader.decode(text, file: "fuzz.yaml")
    _ = diagnostics.map(\.description)
    guard let manifest else { return 0 }
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    for export in manifest.exports {
        let every = max(1, export.window.every.nominalSeconds)
        let length: Double
        switch export.window.extent {
        case .last(let span): length = span.nominalSeconds
        case .start(let start): length = now.timeIntervalSince(start)
        }
        guard length / every < 5_000 else { continue }  // correct but slow: not this target's job
        _ = try? manifest.partitions(of: export, now: now)
    }
    return 0
}

@main
struct Main {
    static func main() throws {
        try fuzzMain { data, size in fuzzManifest(data ?? UnsafePointer(bitPattern: 1)!, size) }
    }
}
