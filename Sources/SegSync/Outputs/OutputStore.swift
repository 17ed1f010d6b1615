import FileIO
import Foundation
import FullStoryContract

/// Where outputs live: the folder on this machine (``FolderOutput``), or a bucket
/// prefix in an object store (`SegSyncStorage.BucketOutput`). The core owns the boundary,
/// as it owns ``StateStore``; the planner sees only what a store observed
/// (``ObservedFiles``): paths, sizes and identities, never files.
///
/// Paths are relative to the output's root (`checkout-events/2026-11-27T13-00Z.csv.gz`).
public protocol OutputStore: Sendable {
    /// For messages: `exports` (as the user would type it) or `s3://bucket/prefix/`.
    var location: String { get }

    /// What is there, against what segsync recorded (`expected`). `.full` reads and
    /// hashes every expected output; `.quick` trusts one whose size and identity (or
    /// modification time) are as recorded.
    func observe(expected: [String: ExpectedFile], depth: ObservedFiles.Depth) async throws -> ObservedFiles

    /// The SHA-256 of one output's bytes, read now; nil when there is none.
    func digest(_ relative: String) async throws -> String?

    /// What the store says of one output now (recorded when an output is adopted).
    func stamp(_ relative: String) async -> OutputStamp

    /// Puts the bytes `fetch` delivers under `relative`, visible only once all of them
    /// are in: a file renamed into place, or an upload completed. `replacing` is what
    /// segsync recorded at that path (an object someone else changed is not overwritten);
    /// `operationId` the export the bytes come from.
    ///
    /// With `decide`, the bytes are first staged out of sight (a `.partial` file, an
    /// upload not yet completed) and `decide` is asked, once they are all there, whether
    /// to put them in place: when it says no they are thrown away, the output stays as
    /// it was, and nil is returned (a finalization whose content did not change).
    func put(_ relative: String, replacing: OutputRecord?, operationId: String,
             decide: (@Sendable (DownloadResult) async throws -> Bool)?,
             fetch: @Sendable (DownloadTarget) async throws -> DownloadResult) async throws -> OutputRecord?

    /// Deletes an output segsync recorded; one already gone is not an error.
    func delete(_ relative: String) async throws

    /// Removes what interrupted writes left: `.partial` files, unfinished uploads.
    func removeLeftovers(_ observed: ObservedFiles) async

    /// Checks, before a run writes anything, that the store does what segsync relies on;
    /// returns warnings to show (a bucket that ignores conditional writes, say).
    func preflight() async throws -> [String]

    /// Where `SHA256SUMS` is, for messages.
    var checksumsLocation: String { get }
    /// `SHA256SUMS` at the output's root, nil when there is none.
    func readChecksums() async throws -> String?
    func writeChecksums(_ text: String) async throws
    /// The identity of `SHA256SUMS` as it is now (``LockfileMark``), nil when absent.
    func checksumsIdentity() async -> String?
}

/// An output store no partition can use in this run (no credentials, a key refused, no
/// such bucket, access denied): the run stops at once, keeping every recorded export
/// (``Verdict/stopRun``), as it does for a rejected API key.
public struct OutputUnusable: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// How a download reaches an output.
public enum DownloadTarget: Sendable {
    /// A file at this path, written through `.partial` and renamed (the folder).
    case file(path: String)
    /// A stream the download pushes bytes into (an upload).
    case stream(any DownloadStream)
}

extension OutputStore {
    /// Puts the bytes in place, always.
    public func put(_ relative: String, replacing: OutputRecord?, operationId: String,
                    fetch: @Sendable (DownloadTarget) async throws -> DownloadResult) async throws -> OutputRecord {
        guard let record = try await put(relative, replacing: replacing, operationId: operationId, decide: nil, fetch: fetch) else {
            throw SegSyncError("\(relative) was not written.")
        }
        return record
    }
}

/// What an output store says of one output: a modification time (files) or the
/// store's identity of the content (an object's ETag).
public struct OutputStamp: Sendable, Equatable {
    public var modified: Double?
    public var identity: String?

    public init(modified: Double? = nil, identity: String? = nil) {
        self.modified = modified
        self.identity = identity
    }
}

/// The output folder: files under ``Layout/outputDirectory``, written through `.partial`,
/// fsynced and renamed into place.
public struct FolderOutput: OutputStore {
    public let layout: Layout

    public init(layout: Layout) {
        self.layout = layout
    }

    public var location: String { layout.displayPath(layout.outputDirectory) }
    public var checksumsLocation: String { layout.checksumsPath }

    public func observe(expected: [String: ExpectedFile], depth: ObservedFiles.Depth) async throws -> ObservedFiles {
        ObservedFiles.scan(directory: layout.outputDirectory, expected: expected, depth: depth)
    }

    public func digest(_ relative: String) async throws -> String? {
        let path = try layout.absolutePath(ofOutput: relative)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try FileDigest.sha256(ofFileAt: path).sha256
    }

    public func stamp(_ relative: String) async -> OutputStamp {
        OutputStamp(modified: ObservedFiles.modificationTime(ofFileAt: layout.outputDirectory + "/" + relative))
    }

    public func put(_ relative: String, replacing: OutputRecord?, operationId: String,
                    decide: (@Sendable (DownloadResult) async throws -> Bool)?,
                    fetch: @Sendable (DownloadTarget) async throws -> DownloadResult) async throws -> OutputRecord? {
        let path = try layout.absolutePath(ofOutput: relative)
        try AtomicFile.makeDirectory((path as NSString).deletingLastPathComponent)
        guard let decide else {
            let file = try await fetch(.file(path: path))
            return OutputRecord(path: relative, bytes: file.bytes, sha256: file.sha256,
                                modified: ObservedFiles.modificationTime(ofFileAt: path),
                                contentSHA256: file.contentSHA256, contentLines: file.contentLines)
        }
        // Staged beside the file under a `.partial` name (so a crash leaves only what
        // the next run clears away), fsynced by the download, then renamed or dropped.
        let staged = path + ".staged.partial"
        do {
            let file = try await fetch(.file(path: staged))
            guard try await decide(file) else {
                unlink(staged)
                return nil
            }
            guard rename(staged, path) == 0 else {
                throw SegSyncError("cannot move \(staged) to \(path): \(String(cString: strerror(errno))).")
            }
            AtomicFile.syncDirectory((path as NSString).deletingLastPathComponent)
            return OutputRecord(path: relative, bytes: file.bytes, sha256: file.sha256,
                                modified: ObservedFiles.modificationTime(ofFileAt: path),
                                contentSHA256: file.contentSHA256, contentLines: file.contentLines)
        } catch {
            unlink(staged)
            throw error
        }
    }

    public func delete(_ relative: String) async throws {
        let path = try layout.absolutePath(ofOutput: relative)
        var info = stat()
        if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
            guard unlink(path) == 0 || errno == ENOENT else {
                throw SegSyncError("cannot delete \(path): \(String(cString: strerror(errno))).")
            }
        }
        // The export's folder goes too once it is empty (rmdir refuses otherwise).
        rmdir((path as NSString).deletingLastPathComponent)
    }

    public func preflight() async throws -> [String] { [] }

    public func removeLeftovers(_ observed: ObservedFiles) async {
        for partial in observed.partialFiles {
            if let path = try? layout.absolutePath(ofOutput: partial) { unlink(path) }
        }
    }

    public func readChecksums() async throws -> String? {
        try? String(contentsOfFile: layout.checksumsPath, encoding: .utf8)
    }

    public func writeChecksums(_ text: String) async throws {
        try AtomicFile.makeDirectory(layout.outputDirectory)
        try AtomicFile.write(Data(text.utf8), to: layout.checksumsPath, newFileMode: 0o644)
    }

    public func checksumsIdentity() async -> String? {
        FileIO.identity(ofFileAt: layout.checksumsPath)
    }
}
