import AsyncHTTPClient
import Crypto
import Foundation
import FullStoryContract
import NIOCore
import ObjectStore
import SegSync
import Synchronization

/// Outputs in an object-store bucket, below a prefix (`output: s3://bucket/prefix`): one
/// list per scan, downloads streamed into multipart uploads (no local copy), writes
/// conditional on what segsync recorded.
///
/// - A new key is written with `If-None-Match: *`, a replacement with `If-Match` on the
///   ETag segsync recorded, so an object someone else wrote is reported, never overwritten.
///   Every object carries `x-amz-meta-segsync-operation`: an object a killed run completed
///   but never recorded (or whose record was lost) is recognised as segsync's and replaced.
/// - An object appears only when its upload completes; an upload that fails or is
///   interrupted is aborted, and one a SIGKILL left is aborted by the next run.
public struct BucketOutput: OutputStore {
    public let settings: BucketSettings
    let client: S3Client
    /// The manifest's export names: the folders below the prefix whose unfinished uploads
    /// are segsync's to abort.
    let exports: Set<String>
    /// Bytes per uploaded part, and parts in flight at once.
    let partSize: Int
    let partsInFlight: Int
    /// What the store does with conditional writes, as ``preflight()`` found.
    let conditionalWrites = ConditionalWrites()

    /// The metadata key naming the operation an object's bytes came from.
    static let operationMetadata = "segsync-operation"

    public init(settings: BucketSettings, client: S3Client, exports: Set<String>,
                partSize: Int = MultipartUpload.defaultPartSize, partsInFlight: Int = 4) {
        self.settings = settings
        self.client = client
        self.exports = exports
        self.partSize = partSize
        self.partsInFlight = partsInFlight
    }

    /// The bucket output `manifest` names, with credentials and region from `environment`
    /// (the standard AWS variables and files; never the manifest).
    public static func open(_ manifest: Manifest, environment: [String: String]) throws -> BucketOutput {
        guard let settings = manifest.bucket else { throw SegSyncError("the manifest's output is not a bucket.") }
        let configuration: S3Configuration
        do {
            configuration = try S3Configuration(region: settings.region, endpoint: settings.endpoint, pathStyle: settings.pathStyle,
                                                environment: environment)
        } catch {
            throw SegSyncError("\(settings.url): \(error)")
        }
        let client = try S3Client(configuration: configuration,
                                  credentials: CredentialChain(environment: environment, httpClient: .shared),
                                  httpClient: .shared)
        return BucketOutput(settings: settings, client: client, exports: Set(manifest.exports.map(\.name)))
    }

    public var location: String { settings.url }
    public var checksumsLocation: String { settings.url + Checksums.fileName }

    func key(_ relative: String) -> String { settings.prefix + relative }

    // MARK: Observing

    public func observe(expected: [String: ExpectedFile], depth: ObservedFiles.Depth) async throws -> ObservedFiles {
        var entries: [String: ObservedFiles.Entry] = [:]
        entries.reserveCapacity(expected.count)
        try await unusable {
            for try await page in client.listObjects(bucket: settings.bucket, prefix: settings.prefix) {
                for object in page.objects where object.key.count > settings.prefix.count {
                    entries[String(object.key.dropFirst(settings.prefix.count))] = .init(objectBytes: object.size, identity: object.etag)
                }
            }
        }
        let listing = ObservedFiles.Listing(entries: entries)
        // Only what the listing cannot vouch for is read (every expected object at `.full`).
        var digests: [String: String] = [:]
        for (path, file) in expected {
            guard let entry = entries[path], entry.bytes == file.bytes, ObservedFiles.verdict(file, entry, depth: depth) == .readBytes else { continue }
            digests[path] = try await digest(path)
        }
        return ObservedFiles.compare(listing, expected: expected, depth: depth, lookup: { _ in nil }, digest: { digests[$0] })
    }

    public func digest(_ relative: String) async throws -> String? {
        var hasher = SHA256()
        do {
            try await unusable {
                try await client.getObject(bucket: settings.bucket, key: key(relative)) { buffer in
                    buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                }
            }
        } catch ObjectStoreError.noSuchKey {
            return nil
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    public func stamp(_ relative: String) async -> OutputStamp {
        let info = try? await client.headObject(bucket: settings.bucket, key: key(relative))
        return OutputStamp(identity: info?.etag)
    }

    // MARK: Writing

    public func put(_ relative: String, replacing: OutputRecord?, operationId: String,
                    decide: (@Sendable (DownloadResult) async throws -> Bool)?,
                    fetch: @Sendable (DownloadTarget) async throws -> DownloadResult) async throws -> OutputRecord? {
        let key = key(relative)
        let condition = try await condition(for: relative, key: key, replacing: replacing, operationId: operationId)
        let upload = UploadStream { [client, settings, partSize, partsInFlight] in
            try MultipartUpload(client: client, bucket: settings.bucket, key: key, condition: condition,
                                contentType: Self.contentType(of: relative), metadata: [Self.operationMetadata: operationId],
                                partSize: partSize, maxInFlight: partsInFlight)
        }
        do {
            let result = try await unusable { try await fetch(.stream(upload)) }
            try Task.checkCancellation()
            if let decide, try await !decide(result) {
                await upload.abort()  // never completed: the object stays as it was
                return nil
            }
            let written = try await unusable { try await upload.complete() }
            return OutputRecord(path: relative, bytes: result.bytes, sha256: result.sha256, identity: written.etag,
                                contentSHA256: result.contentSHA256, contentLines: result.contentLines)
        } catch {
            // Runs to its end in a cancelled task too; what it cannot reach, the next run aborts.
            await upload.abort()
            throw error
        }
    }

    /// The write condition for `key`, decided before a byte is downloaded: absent when
    /// nothing is there; the recorded ETag when it is segsync's object (recorded, or
    /// completed by a run killed before it recorded it); refused otherwise.
    /// A store without conditional writes (``preflight()`` found it) gets the same look
    /// and an unconditional write.
    func condition(for relative: String, key: String, replacing: OutputRecord?, operationId: String) async throws -> WriteCondition {
        let conditional = conditionalWrites.supported
        guard let found = try await unusable({ try await client.headObject(bucket: settings.bucket, key: key) }) else {
            return conditional ? .ifAbsent : .always
        }
        if let replacing, replacing.path == relative, let identity = replacing.identity, identity == found.etag {
            return conditional ? .ifMatch(etag: found.etag) : .always
        }
        if found.metadata[Self.operationMetadata] != nil {
            // segsync wrote it, at this partition's key: this very export's bytes uploaded
            // by a run killed before it recorded them, or an earlier export of the
            // partition whose record was lost (state and lockfile gone). A file in the
            // output folder would be replaced the same way.
            return conditional ? .ifMatch(etag: found.etag) : .always
        }
        throw SegSyncError("s3://\(settings.bucket)/\(key) holds an object segsync did not write; it was left as it is. "
            + "Move it away (or delete it) and run apply again to write this partition there.")
    }

    /// Writes a probe object twice with `If-None-Match: *` (then deletes it): a store that
    /// takes the second write ignores conditional writes, and is named in a warning; one
    /// that answers `NotImplemented` (Backblaze B2, by its documentation) is written to
    /// without conditions from then on, and named too. Either way the look before each
    /// write (``condition(for:key:replacing:operationId:)``) still keeps segsync off
    /// objects it did not write; only a race with another writer is unguarded.
    public func preflight() async throws -> [String] {
        let probe = settings.prefix + ".segsync-probe-" + UUID().uuidString.lowercased()
        let warning: String?
        do {
            warning = try await probeConditions(probe)
        } catch {
            try? await client.deleteObject(bucket: settings.bucket, key: probe)
            throw error
        }
        try? await client.deleteObject(bucket: settings.bucket, key: probe)
        return warning.map { [$0] } ?? []
    }

    private func probeConditions(_ probe: String) async throws -> String? {
        let body = ByteBuffer(string: "segsync checks that this store refuses a conditional write; it deletes this at once.\n")
        do {
            try await unusable { _ = try await client.putObject(bucket: settings.bucket, key: probe, body: body, condition: .ifAbsent) }
        } catch ObjectStoreError.notImplemented(_, let detail) {
            // The write itself must work: only the condition may be missing.
            try await unusable { _ = try await client.putObject(bucket: settings.bucket, key: probe, body: body, condition: .always) }
            conditionalWrites.supported = false
            return "\(settings.url): the store does not support conditional writes (a write with If-None-Match: * was answered "
                + "NotImplemented\(detail.isEmpty ? "" : ": \(detail)")), so segsync writes without them. It still looks before "
                + "each write and never replaces an object it did not write, but an object someone else writes while segsync "
                + "uploads the same key can be overwritten; " + Self.storesWithConditions
        }
        do {
            _ = try await unusable { try await client.putObject(bucket: settings.bucket, key: probe, body: body, condition: .ifAbsent) }
        } catch ObjectStoreError.preconditionFailed {
            return nil  // As it should: the key was taken.
        }
        return "\(settings.url): the store ignores conditional writes (a second write with If-None-Match: * was accepted), "
            + "so an object someone else writes while segsync uploads the same key can be overwritten. segsync still looks "
            + "before each write and never replaces an object it did not write; " + Self.storesWithConditions
    }

    static let storesWithConditions = "use a store that supports conditional writes (AWS S3, Cloudflare R2, a recent MinIO) to close that race."

    public func delete(_ relative: String) async throws {
        try await unusable { try await client.deleteObject(bucket: settings.bucket, key: key(relative)) }
    }

    /// Aborts unfinished multipart uploads below this manifest's export folders (a run
    /// killed mid-upload leaves one, which the store keeps, and bills, until aborted).
    public func removeLeftovers(_ observed: ObservedFiles) async {
        guard let uploads = try? await client.listMultipartUploads(bucket: settings.bucket, prefix: settings.prefix) else { return }
        for upload in uploads {
            let relative = upload.key.dropFirst(settings.prefix.count)
            guard upload.key.hasPrefix(settings.prefix), let folder = relative.split(separator: "/").first,
                  exports.contains(String(folder)) else { continue }
            try? await client.abortMultipartUpload(bucket: settings.bucket, key: upload.key, uploadId: upload.uploadId)
        }
    }

    // MARK: SHA256SUMS

    public func readChecksums() async throws -> String? {
        var bytes: [UInt8] = []
        do {
            try await unusable {
                try await client.getObject(bucket: settings.bucket, key: key(Checksums.fileName)) { buffer in
                    bytes.append(contentsOf: buffer.readableBytesView)
                }
            }
        } catch ObjectStoreError.noSuchKey {
            return nil
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func writeChecksums(_ text: String) async throws {
        try await unusable {
            _ = try await client.putObject(bucket: settings.bucket, key: key(Checksums.fileName), body: ByteBuffer(string: text),
                                           contentType: "text/plain; charset=utf-8")
        }
    }

    public func checksumsIdentity() async -> String? {
        try? await client.headObject(bucket: settings.bucket, key: key(Checksums.fileName))?.etag
    }

    // MARK: Support

    static func contentType(of path: String) -> String {
        if path.hasSuffix(".gz") { return "application/gzip" }
        if path.hasSuffix(".csv") { return "text/csv" }
        if path.hasSuffix(".json") || path.hasSuffix(".ndjson") { return "application/json" }
        return "application/octet-stream"
    }

    /// Runs `body`; an error no partition can get past (no credentials, a key refused,
    /// access denied, no bucket, the wrong region, a skewed clock) becomes
    /// ``OutputUnusable``, which stops the run and keeps every recorded export.
    func unusable<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ObjectStoreError {
            switch error {
            case .noCredentials, .incompleteCredentials, .webIdentity, .credentialsRejected, .accessDenied, .noSuchBucket,
                 .wrongRegion, .clockSkew, .invalidConfiguration:
                throw OutputUnusable("\(settings.url): \(error)")
            default:
                throw error
            }
        }
    }
}

/// Whether writes carry their conditions: yes until ``BucketOutput/preflight()`` finds a
/// store that does not implement them.
final class ConditionalWrites: Sendable {
    private let state = Mutex(true)

    var supported: Bool {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}

/// A download's bytes into a multipart upload; ``restart()`` (the server sends the
/// body again from byte zero) abandons the upload and begins another. Used by one
/// download at a time.
final class UploadStream: DownloadStream, @unchecked Sendable {
    private let make: @Sendable () throws -> MultipartUpload
    private var upload: MultipartUpload?

    init(_ make: @escaping @Sendable () throws -> MultipartUpload) {
        self.make = make
    }

    private func current() throws -> MultipartUpload {
        if let upload { return upload }
        let made = try make()
        upload = made
        return made
    }

    func write(_ bytes: [UInt8]) async throws {
        try await current().append(ByteBuffer(bytes: bytes))
    }

    func restart() async throws {
        await abort()
    }

    /// Makes the object; an empty body (nothing written) is an empty object.
    func complete() async throws -> WrittenObject {
        try await current().complete()
    }

    func abort() async {
        guard let upload else { return }
        self.upload = nil
        try? await upload.abort()
    }
}
