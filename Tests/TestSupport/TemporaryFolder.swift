import Foundation

/// A fresh folder under the system temporary directory, removed when the test ends.
public final class TemporaryFolder: @unchecked Sendable {
    public let path: String

    public init() throws {
        path = NSTemporaryDirectory() + "segsync-test-" + UUID().uuidString.lowercased()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes `text` to a path relative to the folder, creating parent folders.
    public func write(_ relative: String, _ text: String) throws {
        let full = path + "/" + relative
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: full))
    }

    public func read(_ relative: String) -> String? {
        FileManager.default.contents(atPath: path + "/" + relative).map { String(decoding: $0, as: UTF8.self) }
    }

    public func exists(_ relative: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/" + relative)
    }

    /// Every path below `relative`, sorted.
    public func list(_ relative: String = "") -> [String] {
        ((FileManager.default.enumerator(atPath: path + "/" + relative)?.allObjects as? [String]) ?? []).sorted()
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
