import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SegSyncVocabulary

/// Which S3-compatible store to talk to, and how to address its buckets.
public struct S3Configuration: Sendable, Hashable {
    public var region: String
    /// `https://host[:port]` of another S3-compatible store; nil for AWS.
    public var endpoint: String?
    /// `endpoint/bucket/key` (MinIO, Ceph) instead of `bucket.endpoint/key`.
    public var pathStyle: Bool

    public init(region: String, endpoint: String? = nil, pathStyle: Bool = false) {
        self.region = region
        self.endpoint = endpoint
        self.pathStyle = pathStyle
    }

    /// The given region, else `AWS_REGION`, `AWS_DEFAULT_REGION` or the profile's region.
    public init(region: String?, endpoint: String?, pathStyle: Bool, environment: [String: String]) throws {
        guard let region = region ?? defaultRegion(environment: environment) else {
            throw ObjectStoreError.invalidConfiguration(
                "No region for the bucket: set s3.region in the manifest, AWS_REGION or AWS_DEFAULT_REGION, or region in the profile of ~/.aws/config.")
        }
        self.init(region: region, endpoint: endpoint, pathStyle: pathStyle)
    }
}

/// What a store knows of one object.
public struct ObjectInfo: Sendable, Hashable {
    public var key: String
    public var size: Int64
    /// The store's identity of the content, quotes included (`"9b2cf535f27731c974343645a3985328"`).
    public var etag: String
    public var lastModified: Date?
    /// Base64 SHA-256 the store keeps, when it was uploaded with one (`-N` suffix for a
    /// multipart object: a checksum of the parts' checksums). Only HEAD and GET say.
    public var checksumSHA256: String?
    /// User metadata (`x-amz-meta-*`, names lower-cased without the prefix); only HEAD
    /// and GET say.
    public var metadata: [String: String] = [:]
}

/// A page of ``S3Client/listObjects(bucket:prefix:maxKeys:)``.
public struct ObjectListPage: Sendable, Hashable {
    public var objects: [ObjectInfo]
    /// Where the next page starts; nil on the last page.
    public var nextContinuationToken: String?
}

/// When a write may happen.
public enum WriteCondition: Sendable, Hashable {
    case always
    /// `If-None-Match: *`: only when no object has the key.
    case ifAbsent
    /// `If-Match`: only when the object still has this ETag.
    case ifMatch(etag: String)
}

/// What a completed write left in the store.
public struct WrittenObject: Sendable, Hashable {
    public var etag: String
    public var checksumSHA256: String?
}

/// A part of a multipart upload, as ``S3Client/completeMultipartUpload(bucket:key:uploadId:parts:condition:)`` needs it.
public struct UploadedPart: Sendable, Hashable {
    public var partNumber: Int
    public var etag: String
    /// Base64 SHA-256 of the part's bytes.
    public var checksumSHA256: String

    public init(partNumber: Int, etag: String, checksumSHA256: String) {
        self.partNumber = partNumber
        self.etag = etag
        self.checksumSHA256 = checksumSHA256
    }
}

/// A multipart upload started and neither completed nor aborted.
public struct PendingUpload: Sendable, Hashable {
    public var key: String
    public var uploadId: String
    public var initiated: Date?
}

/// A small S3 client over AsyncHTTPClient: the operations segsync's bucket output needs,
/// signed with ``SigV4``, retried by ``S3RetryPolicy``, failing with ``ObjectStoreError``.
public struct S3Client: Sendable {
    public let configuration: S3Configuration
    let endpoint: Endpoint
    let credentials: CredentialChain
    let httpClient: HTTPClient
    let retry: S3RetryPolicy
    let requestTimeout: TimeAmount
    let now: @Sendable () -> Date

    /// `requestTimeout` bounds each attempt until the answer's head arrives (a part's
    /// upload included); a GET's body then streams for as long as it takes.
    public init(
        configuration: S3Configuration, credentials: CredentialChain, httpClient: HTTPClient,
        retry: S3RetryPolicy = S3RetryPolicy(), requestTimeout: Duration = .seconds(300),
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws {
        self.configuration = configuration
        self.endpoint = try Endpoint(configuration.endpoint ?? "https://s3.\(configuration.region).amazonaws.com")
        self.credentials = credentials
        self.httpClient = httpClient
        self.retry = retry
        self.requestTimeout = .nanoseconds(Int64(requestTimeout.components.seconds) * 1_000_000_000 + requestTimeout.components.attoseconds / 1_000_000_000)
        self.now = now
    }

    // MARK: Buckets and listing

    /// Creates `bucket` in the configured region.
    public func createBucket(_ bucket: String) async throws {
        var body: ByteBuffer?
        if configuration.region != "us-east-1" {
            body = ByteBuffer(string: "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(XMLTree.escape(configuration.region))</LocationConstraint></CreateBucketConfiguration>")
        }
        _ = try await send(Call(action: "s3:CreateBucket", method: .PUT, bucket: bucket, body: body)).collected()
    }

    /// One page of `ListObjectsV2` under `prefix`, from `continuationToken`.
    public func listObjectsPage(bucket: String, prefix: String, continuationToken: String? = nil, maxKeys: Int = 1000) async throws -> ObjectListPage {
        var query: [(name: String, value: String)] = [("list-type", "2"), ("prefix", prefix), ("max-keys", String(maxKeys)), ("encoding-type", "url")]
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        let (_, xml) = try await sendReading(Call(action: "s3:ListBucket", method: .GET, bucket: bucket, query: query))
        // Keys come encoded only when the store honoured `encoding-type=url` (keys may hold
        // characters XML cannot carry); decoded as botocore does, `+` being a space.
        let decode = xml.text("EncodingType") == "url"
        var objects: [ObjectInfo] = []
        for entry in xml.all("Contents") {
            guard let rawKey = entry.text("Key"),
                let key = decode ? rawKey.replacingOccurrences(of: "+", with: " ").removingPercentEncoding : rawKey,
                let size = entry.text("Size").flatMap({ Int64($0) })
            else {
                throw ObjectStoreError.invalidResponse(action: "s3:ListBucket", detail: "an entry has no key or size")
            }
            objects.append(ObjectInfo(key: key, size: size, etag: entry.text("ETag") ?? "", lastModified: entry.text("LastModified").flatMap(Timestamp.parse)))
        }
        let truncated = xml.text("IsTruncated") == "true"
        let next = truncated ? xml.text("NextContinuationToken") : nil
        if truncated, next == nil {
            throw ObjectStoreError.invalidResponse(action: "s3:ListBucket", detail: "a truncated listing without NextContinuationToken")
        }
        return ObjectListPage(objects: objects, nextContinuationToken: next)
    }

    /// Every object under `prefix`, a page at a time (one request per page).
    public func listObjects(bucket: String, prefix: String, maxKeys: Int = 1000) -> ObjectListing {
        ObjectListing(client: self, bucket: bucket, prefix: prefix, maxKeys: maxKeys)
    }

    // MARK: Objects

    /// The object's size, ETag and checksum, or nil when there is none with this key.
    public func headObject(bucket: String, key: String) async throws -> ObjectInfo? {
        do {
            let response = try await send(Call(action: "s3:GetObject", method: .HEAD, bucket: bucket, key: key, headers: [("x-amz-checksum-mode", "ENABLED")]))
            return Self.info(key: key, response.headers)
        } catch ObjectStoreError.noSuchKey {
            return nil
        }
    }

    /// Streams the object's bytes to `body`, a buffer at a time as they arrive (memory
    /// stays at one buffer), and returns what the store said of it.
    @discardableResult
    public func getObject(bucket: String, key: String, body: (ByteBuffer) async throws -> Void) async throws -> ObjectInfo {
        let response = try await send(Call(action: "s3:GetObject", method: .GET, bucket: bucket, key: key, headers: [("x-amz-checksum-mode", "ENABLED")]))
        do {
            for try await buffer in response.body { try await body(buffer) }
        } catch let error as ObjectStoreError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw ObjectStoreError.transport(action: "s3:GetObject", cause: "the object's bytes stopped arriving (\(error))")
        }
        return Self.info(key: key, response.headers)
    }

    /// Writes `body` as the whole object, with its SHA-256 for the store to check.
    @discardableResult
    public func putObject(bucket: String, key: String, body: ByteBuffer, condition: WriteCondition = .always, contentType: String? = nil,
                          metadata: [String: String] = [:]) async throws -> WrittenObject {
        let digest = SHA256.hash(data: body.readableBytesView)
        var headers: [(name: String, value: String)] = [("x-amz-checksum-sha256", digest.base64), ("x-amz-sdk-checksum-algorithm", "SHA256")]
        if let contentType { headers.append(("content-type", contentType)) }
        headers += Self.metadataHeaders(metadata)
        let response = try await send(Call(
            action: "s3:PutObject", method: .PUT, bucket: bucket, key: key, headers: headers + condition.headers,
            body: body, payload: .sha256(hex: digest.hex), condition: condition))
        _ = try await response.collected()
        return WrittenObject(etag: response.headers.first(name: "etag") ?? "", checksumSHA256: response.headers.first(name: "x-amz-checksum-sha256") ?? digest.base64)
    }

    /// Deletes the object; deleting a key that is not there succeeds, as in S3.
    public func deleteObject(bucket: String, key: String) async throws {
        _ = try await send(Call(action: "s3:DeleteObject", method: .DELETE, bucket: bucket, key: key)).collected()
    }

    // MARK: Multipart uploads

    /// Starts a multipart upload whose parts each carry a SHA-256; returns its id.
    public func createMultipartUpload(bucket: String, key: String, contentType: String? = nil, metadata: [String: String] = [:]) async throws -> String {
        var headers: [(name: String, value: String)] = [("x-amz-checksum-algorithm", "SHA256")]
        if let contentType { headers.append(("content-type", contentType)) }
        headers += Self.metadataHeaders(metadata)
        let (_, xml) = try await sendReading(Call(action: "s3:PutObject", method: .POST, bucket: bucket, key: key, query: [("uploads", "")], headers: headers))
        guard let id = xml.text("UploadId"), !id.isEmpty else {
            throw ObjectStoreError.invalidResponse(action: "s3:PutObject (CreateMultipartUpload)", detail: "no UploadId")
        }
        return id
    }

    /// Uploads part `partNumber` (1 to 10000; every part but the last at least 5 MiB).
    public func uploadPart(bucket: String, key: String, uploadId: String, partNumber: Int, body: ByteBuffer) async throws -> UploadedPart {
        let digest = SHA256.hash(data: body.readableBytesView)
        let response = try await send(Call(
            action: "s3:PutObject", method: .PUT, bucket: bucket, key: key,
            query: [("partNumber", String(partNumber)), ("uploadId", uploadId)],
            headers: [("x-amz-checksum-sha256", digest.base64), ("x-amz-sdk-checksum-algorithm", "SHA256")],
            body: body, payload: .sha256(hex: digest.hex)))
        _ = try await response.collected()
        guard let etag = response.headers.first(name: "etag") else {
            throw ObjectStoreError.invalidResponse(action: "s3:PutObject (UploadPart)", detail: "no ETag for part \(partNumber)")
        }
        return UploadedPart(partNumber: partNumber, etag: etag, checksumSHA256: digest.base64)
    }

    /// Makes the object out of `parts`; only now does it appear under `key`.
    @discardableResult
    public func completeMultipartUpload(bucket: String, key: String, uploadId: String, parts: [UploadedPart], condition: WriteCondition = .always) async throws -> WrittenObject {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts.sorted(by: { $0.partNumber < $1.partNumber }) {
            xml += "<Part><PartNumber>\(part.partNumber)</PartNumber><ETag>\(XMLTree.escape(part.etag))</ETag><ChecksumSHA256>\(part.checksumSHA256)</ChecksumSHA256></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let body = ByteBuffer(string: xml)
        let (headers, answer) = try await sendReading(Call(
            action: "s3:PutObject", method: .POST, bucket: bucket, key: key, query: [("uploadId", uploadId)],
            headers: condition.headers, body: body, condition: condition))
        return WrittenObject(etag: answer.text("ETag") ?? headers.first(name: "etag") ?? "", checksumSHA256: answer.text("ChecksumSHA256"))
    }

    /// Abandons an upload and frees its parts; an upload already gone counts as aborted.
    public func abortMultipartUpload(bucket: String, key: String, uploadId: String) async throws {
        do {
            _ = try await send(Call(action: "s3:AbortMultipartUpload", method: .DELETE, bucket: bucket, key: key, query: [("uploadId", uploadId)])).collected()
        } catch ObjectStoreError.refused(_, 404, "NoSuchUpload", _) {
            return
        }
    }

    /// Every multipart upload under `prefix` that was neither completed nor aborted.
    public func listMultipartUploads(bucket: String, prefix: String) async throws -> [PendingUpload] {
        var uploads: [PendingUpload] = []
        var markers: (key: String, id: String)?
        repeat {
            var query: [(name: String, value: String)] = [("uploads", ""), ("prefix", prefix)]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.id)] }
            let (_, xml) = try await sendReading(Call(action: "s3:ListBucketMultipartUploads", method: .GET, bucket: bucket, query: query))
            for upload in xml.all("Upload") {
                guard let key = upload.text("Key"), let id = upload.text("UploadId") else { continue }
                uploads.append(PendingUpload(key: key, uploadId: id, initiated: upload.text("Initiated").flatMap(Timestamp.parse)))
            }
            markers = nil
            if xml.text("IsTruncated") == "true", let key = xml.text("NextKeyMarker"), let id = xml.text("NextUploadIdMarker") {
                markers = (key, id)
            }
        } while markers != nil
        return uploads
    }

    private static func info(key: String, _ headers: HTTPHeaders) -> ObjectInfo {
        var metadata: [String: String] = [:]
        for (name, value) in headers where name.lowercased().hasPrefix("x-amz-meta-") {
            metadata[String(name.lowercased().dropFirst("x-amz-meta-".count))] = value
        }
        return ObjectInfo(
            key: key, size: headers.first(name: "content-length").flatMap { Int64($0) } ?? 0,
            etag: headers.first(name: "etag") ?? "",
            lastModified: headers.first(name: "last-modified").flatMap(HTTPDate.parse),
            checksumSHA256: headers.first(name: "x-amz-checksum-sha256"), metadata: metadata)
    }

    /// `x-amz-meta-<name>` headers; names and values must be plain ASCII.
    static func metadataHeaders(_ metadata: [String: String]) -> [(name: String, value: String)] {
        metadata.sorted { $0.key < $1.key }.map { ("x-amz-meta-\($0.key.lowercased())", $0.value) }
    }
}

/// The pages of a `ListObjectsV2` listing, fetched one at a time as they are asked for.
public struct ObjectListing: AsyncSequence, Sendable {
    public typealias Element = ObjectListPage
    let client: S3Client
    let bucket: String
    let prefix: String
    let maxKeys: Int

    public struct AsyncIterator: AsyncIteratorProtocol {
        let listing: ObjectListing
        var token: String?
        var done = false

        public mutating func next() async throws -> ObjectListPage? {
            guard !done else { return nil }
            let page = try await listing.client.listObjectsPage(bucket: listing.bucket, prefix: listing.prefix, continuationToken: token, maxKeys: listing.maxKeys)
            token = page.nextContinuationToken
            done = token == nil
            return page
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(listing: self) }
}

extension WriteCondition {
    var headers: [(name: String, value: String)] {
        switch self {
        case .always: []
        case .ifAbsent: [("if-none-match", "*")]
        case .ifMatch(let etag): [("if-match", etag)]
        }
    }

    var refusal: String {
        switch self {
        case .always: "a condition did not hold"
        case .ifAbsent: "an object already has this key (If-None-Match: *)"
        case .ifMatch(let etag): "the object is no longer the one with ETag \(etag) (If-Match)"
        }
    }
}

/// `Wed, 12 Oct 2009 17:50:00 GMT` (RFC 7231's IMF-fixdate), as `Last-Modified` carries it.
enum HTTPDate {
    static func parse(_ text: String) -> Date? {
        let parts = text.split(separator: " ")
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let month = months.firstIndex(of: String(parts[2])),
            let year = Int(parts[3])
        else { return nil }
        let clock = parts[4].split(separator: ":").compactMap { Int($0) }
        guard clock.count == 3 else { return nil }
        let days = Timestamp.days(fromCivil: year, month + 1, day)
        return Date(timeIntervalSince1970: Double(days * 86_400 + Int64(clock[0] * 3600 + clock[1] * 60 + clock[2])))
    }
}
