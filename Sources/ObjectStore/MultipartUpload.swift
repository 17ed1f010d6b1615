import NIOCore

/// Streams one object into the store as its bytes are produced: bytes gather into parts
/// of `partSize`, each uploaded with its own SHA-256 while the next fills, at most
/// `maxInFlight` at a time (`append` waits when that many are uploading), so memory stays
/// under `(maxInFlight + 1) × partSize` whatever the object's size.
///
/// The object appears only on ``complete()``, under its condition. An object smaller than
/// one part goes as a single `PutObject` with its whole checksum; an empty one too. Use
/// ``write(client:bucket:key:condition:contentType:partSize:maxInFlight:_:)``, which
/// aborts on any error or cancellation; a caller driving the actor by hand must call
/// ``abort()`` itself. One producer at a time: `append` calls must not overlap.
public actor MultipartUpload {
    /// S3's smallest part (every part but the last).
    public static let minimumPartSize = 5 << 20
    public static let defaultPartSize = 8 << 20
    /// S3's most parts per upload: with 8 MiB parts, objects up to 80 GiB.
    public static let maximumParts = 10_000

    public let bucket: String
    public let key: String
    private let client: S3Client
    private let condition: WriteCondition
    private let contentType: String?
    private let metadata: [String: String]
    private let partSize: Int
    private let maxInFlight: Int

    private var pending: ByteBuffer
    private var uploadId: String?
    private var uploading: [Task<UploadedPart, any Error>] = []
    private var uploaded: [UploadedPart] = []
    private var ended = false
    /// Bytes appended so far.
    public private(set) var byteCount: Int64 = 0

    public init(
        client: S3Client, bucket: String, key: String, condition: WriteCondition = .always, contentType: String? = nil,
        metadata: [String: String] = [:], partSize: Int = MultipartUpload.defaultPartSize, maxInFlight: Int = 4
    ) throws {
        guard partSize >= Self.minimumPartSize, partSize <= 5 << 30 else {
            throw ObjectStoreError.uploadMisuse("A multipart upload's part size must be between 5 MiB and 5 GiB, not \(partSize) bytes.")
        }
        self.client = client
        self.bucket = bucket
        self.key = key
        self.condition = condition
        self.contentType = contentType
        self.metadata = metadata
        self.partSize = partSize
        self.maxInFlight = max(1, maxInFlight)
        self.pending = ByteBufferAllocator().buffer(capacity: partSize)
    }

    /// Starts an upload, runs `produce` to append its bytes, completes it, and aborts it
    /// instead when `produce` or the upload fails or the task is cancelled.
    @discardableResult
    public static func write(
        client: S3Client, bucket: String, key: String, condition: WriteCondition = .always, contentType: String? = nil,
        partSize: Int = MultipartUpload.defaultPartSize, maxInFlight: Int = 4,
        _ produce: (MultipartUpload) async throws -> Void
    ) async throws -> WrittenObject {
        let upload = try MultipartUpload(
            client: client, bucket: bucket, key: key, condition: condition, contentType: contentType,
            partSize: partSize, maxInFlight: maxInFlight)
        do {
            try await produce(upload)
            try Task.checkCancellation()
            return try await upload.complete()
        } catch {
            // The next run lists and aborts an upload this abort could not reach.
            try? await upload.abort()
            throw error
        }
    }

    /// Adds bytes to the object, uploading each part as it fills.
    public func append(_ buffer: ByteBuffer) async throws {
        guard !ended else { throw ObjectStoreError.uploadMisuse("Bytes were appended to the upload of '\(key)' after it was completed or aborted.") }
        var buffer = buffer
        byteCount += Int64(buffer.readableBytes)
        while buffer.readableBytes > 0 {
            var slice = buffer.readSlice(length: min(partSize - pending.readableBytes, buffer.readableBytes))!
            pending.writeBuffer(&slice)
            if pending.readableBytes == partSize { try await flush() }
        }
    }

    /// Uploads what is left, waits for every part, and makes the object.
    @discardableResult
    public func complete() async throws -> WrittenObject {
        guard !ended else { throw ObjectStoreError.uploadMisuse("The upload of '\(key)' was already completed or aborted.") }
        let written: WrittenObject
        if let uploadId {
            if pending.readableBytes > 0 { try await flush() }
            while !uploading.isEmpty { try await finishOldest() }
            written = try await client.completeMultipartUpload(bucket: bucket, key: key, uploadId: uploadId, parts: uploaded, condition: condition)
        } else {
            written = try await client.putObject(bucket: bucket, key: key, body: pending, condition: condition, contentType: contentType, metadata: metadata)
        }
        ended = true
        return written
    }

    /// Stops the parts still uploading and abandons the upload, so the store keeps none
    /// of its bytes. Runs to its end even in a cancelled task.
    public func abort() async throws {
        ended = true
        let parts = uploading
        uploading = []
        for part in parts { part.cancel() }
        for part in parts { _ = try? await part.value }
        guard let uploadId else { return }
        self.uploadId = nil
        try await Task { [client, bucket, key] in
            try await client.abortMultipartUpload(bucket: bucket, key: key, uploadId: uploadId)
        }.value
    }

    /// Sends the pending bytes as the next part, first waiting for a slot.
    private func flush() async throws {
        if uploadId == nil {
            uploadId = try await client.createMultipartUpload(bucket: bucket, key: key, contentType: contentType, metadata: metadata)
        }
        guard let uploadId else { return }
        let number = uploaded.count + uploading.count + 1
        guard number <= Self.maximumParts else {
            throw ObjectStoreError.uploadMisuse("The object '\(key)' needs more than \(Self.maximumParts) parts of \(partSize) bytes: use a larger part size.")
        }
        while uploading.count >= maxInFlight { try await finishOldest() }
        let body = pending
        pending = ByteBufferAllocator().buffer(capacity: partSize)
        uploading.append(Task.detached { [client, bucket, key] in
            try await client.uploadPart(bucket: bucket, key: key, uploadId: uploadId, partNumber: number, body: body)
        })
    }

    private func finishOldest() async throws {
        let part = uploading.removeFirst()
        let done = try await withTaskCancellationHandler { try await part.value } onCancel: { part.cancel() }
        uploaded.append(done)
    }
}
