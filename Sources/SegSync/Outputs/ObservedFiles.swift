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
    /// The store's identity of the content when it was written (an object's ETag); while
    /// the object still has it, a quick scan trusts it, and another one means it was replaced.
    public var identity: String?

    public init(bytes: Int64, sha256: String, modified: Double? = nil, identity: String? = nil) {
        self.bytes = bytes
        self.sha256 = sha256
        self.modified = modified
        self.identity = identity
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
        /// The store holds another object under the key (its identity changed).
        case replaced

        public var description: String {
            switch self {
            case .replaced: return "replaced (the object is not the one segsync wrote)"
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
    /// Outputs read and found intact whose stamp (modification time, identity) is not the
    /// recorded one: recording it (``Workspace/tidy(_:_:now:)``) spares the next scan
    /// reading them again.
    public var restamped: [String: OutputStamp] = [:]

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
        scan(directory: directory, listing: list(directory, capacity: expected.count), expected: expected, depth: depth)
    }

    /// What is in a folder (every file below it with what a scan needs of its `lstat`),
    /// or under a bucket prefix.
    public struct Listing: Sendable {
        var entries: [String: Entry] = [:]

        public init(entries: [String: Entry] = [:]) {
            self.entries = entries
        }
    }

    /// Lists `directory` (``walk(_:_:into:)``).
    public static func list(_ directory: String, capacity: Int = 0) -> Listing {
        var listing = Listing()
        listing.entries.reserveCapacity(capacity)
        walk(directory, into: &listing.entries)
        return listing
    }

    /// Checks a listing of `directory` against `expected`.
    public static func scan(directory: String, listing: Listing, expected: [String: ExpectedFile], depth: Depth) -> ObservedFiles {
        compare(listing, expected: expected, depth: depth,
                // Not found by the walk (below a symbolic link, say): asked for by name.
                lookup: { Entry(lstatOf: directory + "/" + $0) },
                digest: { try? FileDigest.sha256(ofFileAt: directory + "/" + $0).sha256 })
    }

    /// What a scan makes of an expected output found with the size it should have.
    public enum Verdict: Sendable, Equatable {
        case intact
        case replaced
        /// Only its bytes can tell.
        case readBytes
    }

    /// At `.quick` depth an output whose modification time (a file) or identity (an
    /// object) is as recorded is intact, and an object with another identity was replaced;
    /// anything else, and everything at `.full` depth, is read and hashed.
    public static func verdict(_ file: ExpectedFile, _ entry: Entry, depth: Depth) -> Verdict {
        guard depth == .quick else { return .readBytes }
        if let recorded = file.identity, let found = entry.identity { return recorded == found ? .intact : .replaced }
        if let recorded = file.modified, recorded == entry.modified { return .intact }
        return .readBytes
    }

    /// Checks `listing` against `expected`: `lookup` finds an entry the listing missed,
    /// `digest` hashes an output's bytes (nil when unreadable).
    public static func compare(_ listing: Listing, expected: [String: ExpectedFile], depth: Depth,
                               lookup: (String) -> Entry?, digest: (String) -> String?) -> ObservedFiles {
        var observed = ObservedFiles()
        let found = listing.entries
        for (path, file) in expected {
            guard let entry = found[path] ?? lookup(path) else {
                observed.problems[path] = .missing
                continue
            }
            guard entry.isRegularFile else {
                observed.problems[path] = .notARegularFile
                continue
            }
            if entry.bytes != file.bytes {
                observed.problems[path] = .sizeMismatch(expected: file.bytes, found: entry.bytes)
                continue
            }
            switch verdict(file, entry, depth: depth) {
            case .intact: continue
            case .replaced: observed.problems[path] = .replaced
            case .readBytes:
                if digest(path) != file.sha256 {
                    observed.problems[path] = .checksumMismatch
                } else if entry.modified != file.modified || entry.identity != file.identity {
                    observed.restamped[path] = OutputStamp(modified: entry.modified, identity: entry.identity)
                }
            }
        }
        for path in found.keys {
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

    /// What a scan needs of a file's `lstat`, or of an object in a listing.
    public struct Entry: Sendable {
        public var isRegularFile: Bool
        public var bytes: Int64
        public var modified: Double?
        /// An object's ETag; nil for a file.
        public var identity: String?

        /// An object as a bucket listing shows it.
        public init(objectBytes bytes: Int64, identity: String) {
            isRegularFile = true
            self.bytes = bytes
            self.identity = identity
        }

        init(_ info: stat) {
            isRegularFile = (info.st_mode & S_IFMT) == S_IFREG
            bytes = Int64(info.st_size)
            modified = FileIO.modificationTime(info)
        }

        init?(lstatOf path: String) {
            var info = stat()
            guard lstat(path, &info) == 0 else { return nil }
            self.init(info)
        }
    }

    /// Every entry under `directory` that is not a folder, as a path relative to it.
    /// Symbolic links are listed, not followed. `readdir` with `fstatat` relative to the
    /// open folder, so a folder of 36,500 files costs one short lookup per file
    /// (FileManager's enumerator, then a `stat` by full path, made a no-op run spend a
    /// third of its time here).
    static func walk(_ directory: String, _ relative: String = "", into entries: inout [String: Entry]) {
        guard let folder = opendir(relative.isEmpty ? directory : directory + "/" + relative) else { return }
        defer { closedir(folder) }
        let descriptor = dirfd(folder)
        while let dirent = readdir(folder) {
            let (name, info): (String, stat?) = withUnsafePointer(to: dirent.pointee.d_name) {
                let cName = UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)
                let name = String(cString: cName)
                if name == "." || name == ".." { return (name, nil) }
                var info = stat()
                return (name, fstatat(descriptor, cName, &info, AT_SYMLINK_NOFOLLOW) == 0 ? info : nil)
            }
            guard let info else { continue }  // . and .., or gone since readdir saw it
            let path = relative.isEmpty ? name : relative + "/" + name
            if (info.st_mode & S_IFMT) == S_IFDIR {
                walk(directory, path, into: &entries)
            } else {
                entries[path] = Entry(info)
            }
        }
    }

    /// The modification time of a file, as recorded in state.
    public static func modificationTime(ofFileAt path: String) -> Double? {
        var info = stat()
        return lstat(path, &info) == 0 ? FileIO.modificationTime(info) : nil
    }
}

/// SHA-256 of a file, read in fixed-size chunks so memory stays flat.
public enum FileDigest {
    /// The file's size and lowercase hex SHA-256.
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
