import Crypto
import Foundation

/// Generated export files, cached on disk by content so a download, its resumptions and
/// later requests for the same export are served from one file (and Range requests are
/// plain seeks). Files are written whole to a temporary name first, so a half-written
/// file is never served.
actor ExportStore {
    struct File: Sendable {
        var path: String
        var size: Int64
    }

    let directory: String
    private let ownsDirectory: Bool
    private let rowsPerHour: Int
    private let late: SyntheticExport.Late
    private var files: [String: Task<File, any Error>] = [:]
    private var order: [String] = []
    private static let capacity = 64

    init(directory: String?, rowsPerHour: Int, late: SyntheticExport.Late = .none) throws {
        if let directory {
            self.directory = directory
            ownsDirectory = false
        } else {
            self.directory = (NSTemporaryDirectory() as NSString).appendingPathComponent(
                "segsync-emulator-\(UUID().uuidString)")
            ownsDirectory = true
        }
        self.rowsPerHour = rowsPerHour
        self.late = late
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
    }

    func file(for spec: ExportSpec) async throws -> File {
        let key = Self.key(spec, rowsPerHour: rowsPerHour, late: late)
        if let existing = files[key] {
            return try await existing.value
        }
        let path = (directory as NSString).appendingPathComponent(key + ".gz")
        let rows = rowsPerHour
        let late = late
        let task = Task<File, any Error> {
            try await withCheckedThrowingContinuation { continuation in
                // Generation is CPU and blocking file I/O: keep it off the concurrency pool.
                DispatchQueue.global().async {
                    continuation.resume(
                        with: Result {
                            if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber
                            {
                                return File(path: path, size: size.int64Value)
                            }
                            let temporary = path + ".tmp-\(UUID().uuidString)"
                            let size = try SyntheticExport(spec: spec, rowsPerHour: rows, late: late).write(to: temporary)
                            try FileManager.default.moveItem(atPath: temporary, toPath: path)
                            return File(path: path, size: size)
                        })
                }
            }
        }
        files[key] = task
        order.append(key)
        evictIfNeeded()
        do {
            return try await task.value
        } catch {
            files[key] = nil
            throw error
        }
    }

    /// Removes the cache folder if this store made it.
    func removeAll() {
        files.removeAll()
        order.removeAll()
        if ownsDirectory {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private func evictIfNeeded() {
        while order.count > Self.capacity {
            let oldest = order.removeFirst()
            files[oldest] = nil
            // A download still reading it keeps its open descriptor; the name just goes.
            try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(oldest + ".gz"))
        }
    }

    private static func key(_ spec: ExportSpec, rowsPerHour: Int, late: SyntheticExport.Late) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var material = (try? encoder.encode(spec)) ?? Data()
        material.append(contentsOf: Array("|\(rowsPerHour)".utf8))
        if spec.asOf != nil { material.append(contentsOf: Array("|\(late.rate)|\(late.seconds)|\(late.seed)".utf8)) }
        return SHA256.hash(data: material).prefix(16).map { String(format: "%02x", $0) }.joined()
    }
}
