import Crypto
import FileIO
import Foundation

/// What a file segsync wrote is expected to be.
public struct ExpectedFile: Sendable, Equatable {
    public var bytes: Int64
    public var sha256: String
    /// The modification time recorded when it was written; when the file still has it
    /// (and its size), a quick scan trusts it without hashing.
    public var modified: Double?

    public init(bytes: Int64, sha256: String, modified: Double? = nil) {
        self.bytes = bytes
        self.sha256 = sha256
        self.modified = modified
    }
}

/// The output folder as found on disk, compared with what segsync recorded.
public struct ObservedFiles: Sendable, Equatable {
    /// Why a recorded file no longer matches its record.
    public enum Problem: Sendable, Equatable, CustomStringConvertible {
        case missing
        case notARegularFile
        case sizeMismatch(expected: Int64, found: Int64)
        case checksumMismatch

        public var description: String {
            switch self {
            case .missing: return "file missing"
            case .notARegularFile: return "not a regular file"
            case .sizeMismatch(let expected, let found): return "size changed (\(expected) → \(found) bytes)"
            case .checksumMismatch: return "checksum mismatch"
            }
        }
    }

    /// Problems by path relative to the output folder; recorded paths absent here are intact.
    public var problems: [String: Problem] = [:]
    /// Files in the output folder that segsync never wrote (left alone, reported).
    public var unknownFiles: [String] = []
    /// Leftovers of interrupted downloads.
    public var partialFiles: [String] = []

    public init(problems: [String: Problem] = [:], unknownFiles: [String] = [], partialFiles: [String] = []) {
        self.problems = problems
        self.unknownFiles = unknownFiles
        self.partialFiles = partialFiles
    }

    /// How hard to look.
    public enum Depth: Sendable {
        /// Hash only files whose size or modification time differs from the record.
        case quick
        /// Hash every file (`segsync verify`).
        case full
    }

    /// Scans `directory` against `expected` (paths relative to it).
    public static func scan(directory: String, expected: [String: ExpectedFile], depth: Depth) -> ObservedFiles {
        var observed = ObservedFiles()
        for (path, file) in expected {
            let absolute = directory + "/" + path
            var info = stat()
            guard lstat(absolute, &info) == 0 else {
                observed.problems[path] = .missing
                continue
            }
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                observed.problems[path] = .notARegularFile
                continue
            }
            let size = Int64(info.st_size)
            if size != file.bytes {
                observed.problems[path] = .sizeMismatch(expected: file.bytes, found: size)
                continue
            }
            let modified = modificationTime(info)
            if depth == .quick, let recorded = file.modified, recorded == modified { continue }
            if (try? FileDigest.sha256(ofFileAt: absolute).sha256) != file.sha256 {
                observed.problems[path] = .checksumMismatch
            }
        }
        var found: [String] = []
        walk(directory, into: &found)
        for path in found {
            if path == Checksums.fileName || expected[path] != nil { continue }
            if path.hasSuffix(".partial") || AtomicFile.isTemporary(path) {
                observed.partialFiles.append(path)
            } else {
                observed.unknownFiles.append(path)
            }
        }
        observed.unknownFiles.sort()
        observed.partialFiles.sort()
        return observed
    }

    /// Every entry under `directory` that is not a folder, as a path relative to it.
    /// Symbolic links are listed, not followed. `readdir` with the entry's type, so a
    /// folder of 36,500 files costs no `stat` per file (FileManager's enumerator made a
    /// no-op run spend a fifth of its time here).
    static func walk(_ directory: String, _ relative: String = "", into paths: inout [String]) {
        guard let folder = opendir(relative.isEmpty ? directory : directory + "/" + relative) else { return }
        defer { closedir(folder) }
        while let entry = readdir(folder) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name == "." || name == ".." { continue }
            let path = relative.isEmpty ? name : relative + "/" + name
            var isFolder = Int(entry.pointee.d_type) == Int(DT_DIR)
            if Int(entry.pointee.d_type) == Int(DT_UNKNOWN) {
                var info = stat()
                isFolder = lstat(directory + "/" + path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
            }
            if isFolder {
                walk(directory, path, into: &paths)
            } else {
                paths.append(path)
            }
        }
    }

    static func modificationTime(_ info: stat) -> Double {
        FileIO.modificationTime(info)
    }

    /// The modification time of a file, as recorded in state.
    public static func modificationTime(ofFileAt path: String) -> Double? {
        var info = stat()
        return lstat(path, &info) == 0 ? modificationTime(info) : nil
    }
}

/// SHA-256 of a file, read in fixed-size chunks so memory stays flat.
public enum FileDigest {
    public static func sha256(ofFileAt path: String) throws -> (bytes: Int64, sha256: String) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw SegSyncError("cannot read \(path).")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        var total: Int64 = 0
        while true {
            let chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
            total += Int64(chunk.count)
        }
        return (total, hasher.finalize().hexString)
    }
}
