import Foundation

/// One JSON line per request, for tests and benchmarks that count calls (e.g. how many
/// exports were created). Paths are logged without their query, so signed link
/// parameters never land in the file.
actor RequestLog {
    struct Entry: Encodable, Sendable {
        var time: String
        var method: String
        var path: String
        var status: Int
        var kind: String
        var fault: String?
        var range: String?
        var auth: Bool
        /// The operation a create answered with (also when nobody was left to read it), so
        /// tests can tell which exports' ids a client lost.
        var operation: String?
    }

    private let handle: FileHandle?

    init(path: String?) throws {
        guard let path else {
            handle = nil
            return
        }
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
            }
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        self.handle = handle
    }

    func record(_ entry: Entry) {
        guard let handle else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var line = try? encoder.encode(entry) else { return }
        line.append(UInt8(ascii: "\n"))
        try? handle.write(contentsOf: line)
    }

    func close() {
        try? handle?.close()
    }
}
