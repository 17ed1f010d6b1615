import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import Testing
import TestSupport

@testable import ObjectStore

/// The client against a real moto server that checks every signature.
///
/// moto checks a signature against the path and query it has already percent-decoded,
/// so it refuses botocore's own signatures too when a key has non-ASCII characters or a
/// query value has a `/` (a `prefix` ending in one). Such keys and prefixes go to the
/// server that checks nothing (the signer's treatment of them is held to botocore's by
/// `SigV4OracleTests`); everything else to the one that checks everything.
@Suite(.timeLimit(.minutes(5)))
struct S3ClientTests {
    @Test("put, get, head and a paginated list round-trip, unicode and spaces in keys included", arguments: [true, false])
    func putGetHeadList(checkingSignatures: Bool) async throws {
        guard let moto = try await MotoServer.shared("putGetHeadList", checkingSignatures: checkingSignatures) else { return }
        let client = try moto.client()
        let bucket = try await moto.bucket(client)
        let (prefix, odd) = checkingSignatures ? ("exports-", "exports-2026 b c.json") : ("exports/", "exports/2026 ü/b c.json")
        let objects = [prefix + "a.csv": "alpha\n", odd: "{\"b\": 1}", prefix + "c~d.txt": "", "other/x": "x"]
        var written: [String: WrittenObject] = [:]
        for (key, text) in objects {
            written[key] = try await client.putObject(bucket: bucket, key: key, body: ByteBuffer(string: text), condition: .ifAbsent)
        }

        var got = ""
        let info = try await client.getObject(bucket: bucket, key: odd) { got += String(buffer: $0) }
        #expect(got == "{\"b\": 1}")
        #expect(info.size == 8)
        #expect(info.etag == written[odd]?.etag)

        let head = try #require(try await client.headObject(bucket: bucket, key: prefix + "a.csv"))
        #expect(head.size == 6)
        #expect(head.etag == written[prefix + "a.csv"]?.etag)
        #expect(head.checksumSHA256 == SHA256.hash(data: Array("alpha\n".utf8)).base64)
        #expect(head.lastModified.map { abs($0.timeIntervalSinceNow) < 600 } == true)
        #expect(try await client.headObject(bucket: bucket, key: prefix + "missing") == nil)

        var pages: [[ObjectInfo]] = []
        for try await page in client.listObjects(bucket: bucket, prefix: prefix, maxKeys: 2) { pages.append(page.objects) }
        #expect(pages.map(\.count) == [2, 1])
        let listed = pages.flatMap { $0 }
        #expect(listed.map(\.key) == [odd, prefix + "a.csv", prefix + "c~d.txt"])
        #expect(listed.map(\.size) == [8, 6, 0])
        #expect(listed.allSatisfy { $0.etag == written[$0.key]?.etag && $0.lastModified != nil })

        try await client.deleteObject(bucket: bucket, key: prefix + "a.csv")
        try await client.deleteObject(bucket: bucket, key: prefix + "a.csv")  // already gone: still fine
        #expect(try await client.headObject(bucket: bucket, key: prefix + "a.csv") == nil)
        await #expect(throws: ObjectStoreError.noSuchKey(bucket: bucket, key: prefix + "a.csv")) {
            try await client.getObject(bucket: bucket, key: prefix + "a.csv") { _ in }
        }
    }

    @Test("a conditional put on an existing key, or with a stale ETag, is refused and names the key")
    func conditionalWrites() async throws {
        guard let moto = try await MotoServer.shared("conditionalWrites") else { return }
        let client = try moto.client()
        let bucket = try await moto.bucket(client)
        let first = try await client.putObject(bucket: bucket, key: "p/data.csv", body: ByteBuffer(string: "one"), condition: .ifAbsent)

        let absent = await #expect(throws: ObjectStoreError.self) {
            try await client.putObject(bucket: bucket, key: "p/data.csv", body: ByteBuffer(string: "two"), condition: .ifAbsent)
        }
        #expect(absent == .preconditionFailed(bucket: bucket, key: "p/data.csv", condition: "an object already has this key (If-None-Match: *)"))
        #expect(absent?.description.contains("'p/data.csv'") == true)

        let second = try await client.putObject(bucket: bucket, key: "p/data.csv", body: ByteBuffer(string: "two"), condition: .ifMatch(etag: first.etag))
        #expect(second.etag != first.etag)
        let stale = await #expect(throws: ObjectStoreError.self) {
            try await client.putObject(bucket: bucket, key: "p/data.csv", body: ByteBuffer(string: "three"), condition: .ifMatch(etag: first.etag))
        }
        #expect(stale?.description == "The store refused to write 'p/data.csv' in bucket '\(bucket)' because the object is no longer the one with ETag \(first.etag) (If-Match): someone else wrote it; nothing was overwritten.")
        var bytes = ""
        try await client.getObject(bucket: bucket, key: "p/data.csv") { bytes += String(buffer: $0) }
        #expect(bytes == "two")
    }

    @Test("a 12 MiB object streamed in parts with checksums reads back with the same SHA-256, and leaves no upload")
    func multipartStreamed() async throws {
        guard let moto = try await MotoServer.shared("multipartStreamed") else { return }
        let client = try moto.client()
        let bucket = try await moto.bucket(client)
        var generator = SeededBytes(seed: 7)
        var hasher = SHA256()
        let total = 12 << 20 + 12_345
        let written = try await MultipartUpload.write(
            client: client, bucket: bucket, key: "big-object.bin", condition: .ifAbsent, partSize: MultipartUpload.minimumPartSize, maxInFlight: 2
        ) { upload in
            var sent = 0
            while sent < total {
                let chunk = generator.next(min(total - sent, 300_001))
                hasher.update(data: chunk)
                try await upload.append(ByteBuffer(bytes: chunk))
                sent += chunk.count
            }
            #expect(await upload.byteCount == Int64(total))
        }
        #expect(written.etag.hasSuffix("-3\""), "three parts of 5, 5 and 2 MiB: \(written.etag)")

        var reader = SHA256()
        var chunks = 0
        let info = try await client.getObject(bucket: bucket, key: "big-object.bin") { buffer in
            reader.update(data: buffer.readableBytesView)
            chunks += 1
        }
        #expect(info.size == Int64(total))
        #expect(reader.finalize() == hasher.finalize())
        #expect(chunks > 1, "the body arrives in pieces, not as one buffer")
        #expect(try await client.listMultipartUploads(bucket: bucket, prefix: "big-").isEmpty)
    }

    @Test("an object smaller than a part is one PutObject carrying the whole object's checksum")
    func smallObjectIsOnePut() async throws {
        guard let moto = try await MotoServer.shared("smallObjectIsOnePut") else { return }
        let client = try moto.client()
        let bucket = try await moto.bucket(client)
        let body = Array(repeating: UInt8(ascii: "z"), count: 100_000)
        let written = try await MultipartUpload.write(client: client, bucket: bucket, key: "small.txt", condition: .ifAbsent) {
            try await $0.append(ByteBuffer(bytes: body[..<40_000]))
            try await $0.append(ByteBuffer(bytes: body[40_000...]))
        }
        #expect(!written.etag.contains("-"), "a plain PutObject's ETag: \(written.etag)")
        let head = try #require(try await client.headObject(bucket: bucket, key: "small.txt"))
        #expect(head.size == 100_000)
        #expect(head.checksumSHA256 == SHA256.hash(data: body).base64)
        let empty = try await MultipartUpload.write(client: client, bucket: bucket, key: "empty.txt") { _ in }
        #expect(try await client.headObject(bucket: bucket, key: "empty.txt")?.etag == empty.etag)
    }

    @Test("an upload whose producer fails is aborted, and a completion refused by If-None-Match too: no upload is left")
    func failedUploadsAreAborted() async throws {
        guard let moto = try await MotoServer.shared("failedUploadsAreAborted") else { return }
        let client = try moto.client()
        let bucket = try await moto.bucket(client)
        struct ProducerFailed: Error {}
        await #expect(throws: ProducerFailed.self) {
            try await MultipartUpload.write(client: client, bucket: bucket, key: "f-broken.bin", partSize: MultipartUpload.minimumPartSize) { upload in
                try await upload.append(ByteBuffer(repeating: 1, count: 6 << 20))
                throw ProducerFailed()
            }
        }
        #expect(try await client.listMultipartUploads(bucket: bucket, prefix: "f-").isEmpty)
        #expect(try await client.headObject(bucket: bucket, key: "f-broken.bin") == nil)

        try await client.putObject(bucket: bucket, key: "f-taken.bin", body: ByteBuffer(string: "first"))
        await #expect(throws: ObjectStoreError.preconditionFailed(bucket: bucket, key: "f-taken.bin", condition: "an object already has this key (If-None-Match: *)")) {
            try await MultipartUpload.write(client: client, bucket: bucket, key: "f-taken.bin", condition: .ifAbsent, partSize: MultipartUpload.minimumPartSize) { upload in
                try await upload.append(ByteBuffer(repeating: 2, count: 7 << 20))
            }
        }
        #expect(try await client.listMultipartUploads(bucket: bucket, prefix: "f-").isEmpty)

        // An upload left behind (as by a SIGKILL) is listed, then aborted by id.
        let id = try await client.createMultipartUpload(bucket: bucket, key: "f-left.bin")
        _ = try await client.uploadPart(bucket: bucket, key: "f-left.bin", uploadId: id, partNumber: 1, body: ByteBuffer(string: "part"))
        let pending = try await client.listMultipartUploads(bucket: bucket, prefix: "f-")
        #expect(pending.map(\.key) == ["f-left.bin"])
        #expect(pending.map(\.uploadId) == [id])
        try await client.abortMultipartUpload(bucket: bucket, key: "f-left.bin", uploadId: id)
        try await client.abortMultipartUpload(bucket: bucket, key: "f-left.bin", uploadId: id)  // already gone: still fine
        #expect(try await client.listMultipartUploads(bucket: bucket, prefix: "f-").isEmpty)
    }

    @Test("a cancelled upload is aborted")
    func cancelledUploadIsAborted() async throws {
        guard let moto = try await MotoServer.shared("cancelledUploadIsAborted") else { return }
        let client = try moto.client()
        let bucket = try await moto.bucket(client)
        let started = AsyncStream<Void>.makeStream()
        let task = Task {
            try await MultipartUpload.write(client: client, bucket: bucket, key: "c-cancelled.bin", partSize: MultipartUpload.minimumPartSize) { upload in
                try await upload.append(ByteBuffer(repeating: 3, count: 5 << 20))
                started.continuation.yield()
                while true {
                    try await upload.append(ByteBuffer(repeating: 3, count: 1 << 20))
                    // Produces until cancelled: the cancellation, not a time, ends it.
                    try Task.checkCancellation()
                    await Task.yield()
                }
            }
        }
        for await _ in started.stream { break }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(try await client.listMultipartUploads(bucket: bucket, prefix: "c-").isEmpty)
    }

    @Test("a wrong secret is SignatureDoesNotMatch, an unknown key InvalidAccessKeyId; the sentence names the source, never the secret")
    func rejectedCredentials() async throws {
        guard let moto = try await MotoServer.shared("rejectedCredentials") else { return }
        let bucket = try await moto.bucket()
        var wrong = moto.admin
        wrong.secretAccessKey = "not-the-secret-0123456789"
        wrong.source = "the environment (AWS_ACCESS_KEY_ID)"
        let error = await #expect(throws: ObjectStoreError.self) {
            try await moto.client(wrong).listObjectsPage(bucket: bucket, prefix: "")
        }
        #expect(error == .credentialsRejected(code: "SignatureDoesNotMatch", credentials: wrong.description))
        #expect(error?.description.contains("the environment (AWS_ACCESS_KEY_ID)") == true)
        #expect(error?.description.contains("not-the-secret") == false)

        let unknown = Credentials(accessKeyId: "AKIAUNKNOWN000000000", secretAccessKey: "whatever", source: "profile 'ci' in /tmp/credentials")
        await #expect(throws: ObjectStoreError.credentialsRejected(code: "InvalidAccessKeyId", credentials: unknown.description)) {
            try await moto.client(unknown).putObject(bucket: bucket, key: "k", body: ByteBuffer(string: "x"))
        }
    }

    @Test("a missing bucket is NoSuchBucket; an action the policy does not allow is AccessDenied naming bucket and action")
    func missingBucketAndAccessDenied() async throws {
        guard let moto = try await MotoServer.shared("missingBucketAndAccessDenied") else { return }
        let client = try moto.client()
        let error = await #expect(throws: ObjectStoreError.self) {
            try await client.listObjectsPage(bucket: "segsync-no-such-bucket", prefix: "")
        }
        #expect(error == .noSuchBucket("segsync-no-such-bucket"))
        #expect(error?.description == "The bucket 'segsync-no-such-bucket' does not exist in this store (check its name, the endpoint and the region).")

        let bucket = try await moto.bucket(client)
        let reader = try await moto.user("reader-\(UUID().uuidString.prefix(8))", allowed: ["s3:GetObject", "s3:ListBucket"])
        let readOnly = try moto.client(reader)
        _ = try await readOnly.listObjectsPage(bucket: bucket, prefix: "")
        let denied = await #expect(throws: ObjectStoreError.self) {
            try await readOnly.putObject(bucket: bucket, key: "x", body: ByteBuffer(string: "x"))
        }
        #expect(denied == .accessDenied(bucket: bucket, action: "s3:PutObject"))
        #expect(denied?.description.contains("'\(bucket)'") == true)
    }

    @Test("a connection that cannot be made is retried with backoff, then named")
    func unreachableStoreIsRetried() async throws {
        let sleeps = Sleeps()
        let retry = S3RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(100), random: { 0.5 }, sleep: { await sleeps.add($0) })
        let client = try S3Client(
            configuration: S3Configuration(region: "us-east-1", endpoint: "http://127.0.0.1:\(try freePort())", pathStyle: true),
            credentials: CredentialChain(fixed: Credentials(accessKeyId: "AKID", secretAccessKey: "s", source: "test")),
            httpClient: .shared, retry: retry, requestTimeout: .seconds(2))
        let error = await #expect(throws: ObjectStoreError.self) { try await client.listObjectsPage(bucket: "b", prefix: "") }
        guard case .transport(let action, let cause)? = error else { Issue.record("not a transport error: \(String(describing: error))"); return }
        #expect(action == "s3:ListBucket")
        #expect(cause.contains("after 3 attempts"))
        #expect(await sleeps.all == [.milliseconds(50), .milliseconds(100)])
    }
}

actor Sleeps {
    var all: [Duration] = []
    func add(_ duration: Duration) { all.append(duration) }
}

/// Deterministic bytes (xorshift), so a failure can be reproduced.
struct SeededBytes {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }
}
