import AsyncHTTPClient
import Crypto
import FileIO
import FullStoryContract
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `Content-Range: bytes 100-199/200` (the total may be `*`).
struct ContentRange: Equatable {
    var start: Int64
    var end: Int64
    var total: Int64?

    init?(_ header: String) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bytes ") else { return nil }
        let spec = trimmed.dropFirst(6)
        let parts = spec.split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let bounds = parts[0].split(separator: "-", maxSplits: 1)
        guard bounds.count == 2, let start = Int64(bounds[0]), let end = Int64(bounds[1]), start <= end else {
            return nil
        }
        self.start = start
        self.end = end
        self.total = parts[1] == "*" ? nil : Int64(parts[1])
    }

    /// The whole body's size after a resume at `received`: the range's total, else what
    /// was received plus this answer's `Content-Length`. Header values are the server's
    /// text: a sum that would overflow is unknown (nil), never a trap.
    func total(resumedAt received: Int64, contentLength: Int64?) -> Int64? {
        if let total { return total }
        guard let contentLength else { return nil }
        let (sum, overflow) = received.addingReportingOverflow(contentLength)
        return overflow ? nil : sum
    }
}

/// Where a download streams: the `.partial` file, or a ``DownloadStream`` (an upload).
/// Writes, hashes and (optionally) gunzips each chunk as it comes, so nothing
/// accumulates in memory.
///
/// Used from one task only.
final class DownloadSink: @unchecked Sendable {
    /// How much a download gathers before one trip to the thread pool writes it.
    static let batchBytes = 1 << 20

    /// The `.partial`'s path, or a name for the stream in messages.
    let path: String
    let shownURL: String
    private let decompress: Bool
    private var descriptor: Int32 = -1
    private let stream: (any DownloadStream)?
    /// A batch's bytes for the stream, once hashed (and gunzipped).
    private var outgoing: [UInt8] = []
    private var hasher = SHA256()
    private var written: Int64 = 0
    private var inflater: GzipInflater?
    /// The content's digest, when asked for (``ContentDigest``).
    private var content: ContentDigest?
    private let digestContent: Bool

    private let placement: FileIO.Placement

    init(path: String, decompress: Bool, digestContent: Bool = false, shownURL: String, placement: FileIO.Placement = .system) throws {
        self.path = path
        self.decompress = decompress
        self.digestContent = digestContent
        self.shownURL = shownURL
        self.placement = placement
        stream = nil
        // The inflater first: if it cannot start, no descriptor or .partial is left behind.
        inflater = decompress ? try GzipInflater(shownURL: shownURL) : nil
        content = digestContent ? try ContentDigest(gzipped: !decompress, shownURL: shownURL) : nil
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else {
            throw FullStoryAPIError.fileSystem(path: path, reason: Self.errnoText())
        }
    }

    /// A sink that hands each batch to `stream` instead of a file.
    init(stream: any DownloadStream, decompress: Bool, digestContent: Bool = false, shownURL: String) throws {
        path = shownURL
        self.decompress = decompress
        self.digestContent = digestContent
        self.shownURL = shownURL
        self.stream = stream
        placement = .system
        inflater = decompress ? try GzipInflater(shownURL: shownURL) : nil
        content = digestContent ? try ContentDigest(gzipped: !decompress, shownURL: shownURL) : nil
    }

    deinit {
        // Every path out of a download finishes or discards; this only guards a leak.
        if descriptor >= 0 { close(descriptor) }
    }

    /// Batches a download may have handed on and not yet seen hashed and written: four
    /// for a raw file (two lanes to keep busy), one where each batch goes whole through
    /// one lane (a gunzip, a stream, whose upload keeps its own parts in flight; more
    /// there only held more memory: 79 → 90 MiB for a 1 GiB export into a bucket).
    var batchesInFlight: Int { stream == nil && inflater == nil && content == nil ? 4 : 1 }

    /// The last batch handed to each lane. A batch is hashed once the one before it is
    /// hashed, and written once the one before it is written; a lane stops at its first
    /// error (every later batch in it fails with that error).
    private var hashLane: Task<Void, any Error>?
    private var writeLane: Task<Void, any Error>?

    /// Hands `chunks` on and returns at once: the task ends when they are hashed and
    /// written. Called from one task, in the order of the bytes; nothing else touches
    /// the sink (``restart()``, ``finish()``) until every task handed out has ended.
    ///
    /// A raw download to a file runs two lanes on NIO's thread pool for blocking work,
    /// hashing and writing, which read the same buffers (each touches only its own state:
    /// the hasher; the descriptor). So while the next batches arrive, one is hashed as
    /// another is written. A gunzip, a content digest or a stream take each batch whole,
    /// in one lane.
    func enqueue(_ chunks: [ByteBuffer]) -> Task<Void, any Error> {
        guard stream == nil, inflater == nil, content == nil else {
            let previous = writeLane
            let whole = Task {
                try await previous?.value
                try await self.writeInOrder(chunks)
            }
            writeLane = whole
            return whole
        }
        let previousHash = hashLane, previousWrite = writeLane
        let hash = Task {
            try await previousHash?.value
            try await NIOThreadPool.singleton.runIfActive {
                for chunk in chunks { chunk.withUnsafeReadableBytes { self.hasher.update(bufferPointer: $0) } }
            }
        }
        let write = Task {
            try await previousWrite?.value
            try await NIOThreadPool.singleton.runIfActive {
                for chunk in chunks { try chunk.withUnsafeReadableBytes { try self.writeRaw($0) } }
            }
        }
        hashLane = hash
        writeLane = write
        // Both lanes end before this does, whichever fails: nothing touches the sink
        // (a restart, a close) while a batch is still being written.
        return Task {
            let hashed = await hash.result, written = await write.result
            try hashed.get()
            try written.get()
        }
    }

    /// One batch, whole: gunzipped and digested on the thread pool, or handed to the stream.
    private func writeInOrder(_ chunks: [ByteBuffer]) async throws {
        if let stream {
            for chunk in chunks { try write(chunk) }
            let bytes = outgoing
            outgoing.removeAll(keepingCapacity: true)
            if !bytes.isEmpty { try await stream.write(bytes) }
            return
        }
        try await NIOThreadPool.singleton.runIfActive {
            for chunk in chunks { try self.write(chunk) }
        }
    }

    func write(_ chunk: ByteBuffer) throws {
        if let content, content.gzipped { try content.feed(chunk) }
        if let inflater {
            try inflater.feed(chunk) { try self.emit($0) }
        } else {
            try emit(chunk)
        }
    }

    /// Throws everything away and starts again from byte zero.
    func restart() async throws {
        if let stream {
            outgoing.removeAll()
            try await stream.restart()
        } else {
            guard ftruncate(descriptor, 0) == 0, lseek(descriptor, 0, SEEK_SET) == 0 else {
                throw FullStoryAPIError.fileSystem(path: path, reason: Self.errnoText())
            }
        }
        hasher = SHA256()
        written = 0
        writebackFrom = 0
        hashLane = nil
        writeLane = nil
        inflater = decompress ? try GzipInflater(shownURL: shownURL) : nil
        content = digestContent ? try ContentDigest(gzipped: !decompress, shownURL: shownURL) : nil
    }

    /// Checks the gzip stream is complete and, for a file, fsyncs and closes it (it stays
    /// `.partial`). What a stream received is the caller's to complete.
    func finish() async throws -> DownloadResult {
        if let stream {
            try inflater?.finish()
            if !outgoing.isEmpty { try await stream.write(outgoing) }
            outgoing = []
            return try result()
        }
        return try await NIOThreadPool.singleton.runIfActive { try self.finishFile() }
    }

    private func finishFile() throws -> DownloadResult {
        try inflater?.finish()
        do {
            try placement.sync(descriptor, path)
        } catch let failure as FileIO.Failure where failure.code == ENOSPC || failure.code == EDQUOT {
            throw FullStoryAPIError.diskFull(folder: (path as NSString).deletingLastPathComponent)
        } catch {
            throw FullStoryAPIError.fileSystem(path: path, reason: "\(error)")
        }
        close(descriptor)
        descriptor = -1
        return try result()
    }

    private func result() throws -> DownloadResult {
        var result = DownloadResult(bytes: written, sha256: Self.hex(hasher.finalize()))
        if let content {
            let (digest, lines) = try content.finish()
            result.contentSHA256 = Self.hex(digest)
            result.contentLines = lines
        }
        return result
    }

    /// Closes (if open) and removes the `.partial`.
    func discard() {
        if descriptor >= 0 {
            close(descriptor)
            descriptor = -1
        }
        unlink(path)
    }

    /// Renames the finished `.partial` into place and fsyncs the folder, so the new name
    /// survives a crash as well as the bytes do.
    func commit(to finalPath: String) throws {
        do {
            try placement.rename(path, finalPath)
        } catch {
            throw FullStoryAPIError.fileSystem(path: finalPath, reason: "\(error)")
        }
        // Best effort: the bytes are already durable, and some file systems cannot fsync a folder.
        try? placement.syncDirectory((finalPath as NSString).deletingLastPathComponent)
    }

    /// Hashes bytes and writes them to the file, or keeps them for the stream.
    private func emit(_ buffer: ByteBuffer) throws {
        if let content, !content.gzipped { content.add(buffer) }
        try buffer.withUnsafeReadableBytes { bytes in
            hasher.update(bufferPointer: bytes)
            if stream != nil {
                outgoing.append(contentsOf: bytes)
                written += Int64(bytes.count)
            } else {
                try writeRaw(bytes)
            }
        }
    }

    /// Writes bytes (hashed elsewhere) to the `.partial`.
    private func writeRaw(_ bytes: UnsafeRawBufferPointer) throws {
        do {
            try FileIO.writeAll(descriptor, bytes)
        } catch let failure as FileIO.Failure where failure.code == ENOSPC || failure.code == EDQUOT {
            throw FullStoryAPIError.diskFull(folder: (path as NSString).deletingLastPathComponent)
        } catch {
            throw FullStoryAPIError.fileSystem(path: path, reason: "\(error)")
        }
        written += Int64(bytes.count)
        if written - writebackFrom >= Self.writebackBytes { startWriteback() }
    }

    /// Bytes between two starts of writeback.
    static let writebackBytes: Int64 = 8 << 20
    /// Where the last writeback started; what came before it is on its way to the disk.
    private var writebackFrom: Int64 = 0

    /// Sends what was written so far on to the disk while the download goes on, so the
    /// final fsync waits for the last few MiB instead of the whole file; pages already
    /// written back are dropped from the cache (a big export does not evict everything
    /// else). Linux starts writeback of a range for `POSIX_FADV_DONTNEED`; elsewhere this
    /// is advice only, and the fsync does all the work as before.
    private func startWriteback() {
        let from = max(0, writebackFrom - Self.writebackBytes)
        #if canImport(Glibc)
        _ = posix_fadvise(descriptor, off_t(from), off_t(written - from), POSIX_FADV_DONTNEED)
        #endif
        writebackFrom = written
    }

    private static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    private static func errnoText() -> String {
        FileIO.Failure(errno).description
    }
}

/// The SHA-256 and line count of a download's content: of the bytes written when they
/// are gunzipped on the way (`decompress: true`), else of the gzip stream inflated on the
/// side and thrown away. Two exports of the same rows agree on it even when their gzip
/// headers (a time stamp, the compression level) differ.
final class ContentDigest {
    let gzipped: Bool
    private let inflater: GzipInflater?
    private var hasher = SHA256()
    private var lines: Int64 = 0

    init(gzipped: Bool, shownURL: String) throws {
        self.gzipped = gzipped
        inflater = gzipped ? try GzipInflater(shownURL: shownURL) : nil
    }

    /// Compressed bytes, as they arrive.
    func feed(_ chunk: ByteBuffer) throws {
        try inflater?.feed(chunk) { add($0) }
    }

    /// Content bytes.
    func add(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            hasher.update(bufferPointer: bytes)
            var count: Int64 = 0
            for byte in bytes where byte == UInt8(ascii: "\n") { count += 1 }
            lines += count
        }
    }

    func finish() throws -> (SHA256.Digest, Int64) {
        try inflater?.finish()
        return (hasher.finalize(), lines)
    }
}
