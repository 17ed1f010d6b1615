import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// One S3 request as the operations describe it; ``S3Client/send(_:)`` addresses, signs,
/// retries and maps its failures.
struct Call: Sendable {
    /// The IAM action, as an access-denied message names it (`s3:PutObject`).
    var action: String
    var method: HTTPMethod
    var bucket: String?
    var key: String? = nil
    var query: [(name: String, value: String)] = []
    var headers: [(name: String, value: String)] = []
    var body: ByteBuffer? = nil
    /// Nil: the body's SHA-256 is computed here.
    var payload: SigV4.Payload? = nil
    /// Names the refusal when the store answers 412.
    var condition: WriteCondition = .always
}

extension S3Client {
    /// Sends `call` until it gets a 2xx answer, whose body is left to the caller, or fails
    /// with an ``ObjectStoreError`` (transient failures retried by ``S3RetryPolicy``).
    func send(_ call: Call) async throws -> HTTPClientResponse {
        try await perform(call) { $0 }
    }

    /// `send` for operations whose answer is a small XML document, read within the retry
    /// loop: a 200 whose document is an `<Error>` (CompleteMultipartUpload's way of
    /// failing late) fails or is retried like an error status.
    func sendReading(_ call: Call) async throws -> (headers: HTTPHeaders, xml: XMLTree) {
        try await perform(call) { response in
            let body = try await response.body.collect(upTo: 16 << 20)
            let bytes = Array(buffer: body)
            guard let xml = XMLTree.parse(bytes) else {
                throw ObjectStoreError.invalidResponse(action: call.action, detail: bytes.isEmpty ? "an empty answer" : "an answer that is not XML")
            }
            if xml.name == "Error" { throw ErrorAnswer(status: 200, headers: response.headers, xml: xml) }
            return (response.headers, xml)
        }
    }

    private func perform<T>(_ call: Call, read: (HTTPClientResponse) async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            let failure: ObjectStoreError
            var credentialsInUse = "the configured credentials"
            do {
                let credentials = try await self.credentials.credentials(now: now())
                credentialsInUse = credentials.description
                let response = try await execute(call, credentials: credentials)
                let status = Int(response.status.code)
                guard (200..<300).contains(status) else {
                    let body = try await response.body.collect(upTo: 1 << 20)
                    throw ErrorAnswer(status: status, headers: response.headers, xml: XMLTree.parse(Array(buffer: body)))
                }
                return try await read(response)
            } catch let answer as ErrorAnswer {
                let error = answer.error(for: call, region: configuration.region, credentials: credentialsInUse)
                guard S3RetryPolicy.isTransient(status: answer.status, code: answer.code) else { throw error }
                failure = attempt < retry.maxAttempts
                    ? error : .unavailable(action: call.action, status: answer.status, code: answer.code ?? "", attempts: attempt)
            } catch let error as ObjectStoreError {
                throw error
            } catch {
                if error is CancellationError || Task.isCancelled { throw CancellationError() }
                failure = .transport(action: call.action, cause: attempt > 1 ? "\(error) (after \(attempt) attempts)" : "\(error)")
            }
            guard attempt < retry.maxAttempts else { throw failure }
            try await retry.sleep(retry.backoff(attempt: attempt))
            attempt += 1
        }
    }

    private func execute(_ call: Call, credentials: Credentials) async throws -> HTTPClientResponse {
        let (target, path) = address(bucket: call.bucket, key: call.key)
        let signable = SigV4.Request(method: call.method.rawValue, host: target.hostHeader, path: path, query: call.query, headers: call.headers)
        let payload = call.payload ?? call.body.map { .bytes($0.readableBytesView) } ?? .empty
        let signed = SigV4(credentials: credentials, region: configuration.region).sign(signable, payload: payload, at: now())
        var request = HTTPClientRequest(url: target.url(path: signable.encodedTarget))
        request.method = call.method
        for (name, value) in call.headers + signed { request.headers.add(name: name, value: value) }
        // S3 wants a Content-Length on every PUT and POST, 0 included.
        if let body = call.body ?? ([.PUT, .POST].contains(call.method) ? ByteBuffer() : nil) { request.body = .bytes(body) }
        return try await httpClient.execute(request, timeout: requestTimeout)
    }

    /// Where a bucket and key live: `bucket.endpoint/key`, or `endpoint/bucket/key` in
    /// path style and for bucket names with dots over https (which a wildcard
    /// certificate cannot cover).
    func address(bucket: String?, key: String?) -> (Endpoint, path: String) {
        guard let bucket else { return (endpoint, "/") }
        if configuration.pathStyle || (bucket.contains(".") && endpoint.scheme == "https") {
            return (endpoint, "/" + bucket + (key.map { "/" + $0 } ?? ""))
        }
        return (endpoint.prefixed(bucket), "/" + (key ?? ""))
    }
}

/// A non-2xx answer (or a 200 carrying `<Error>`), before it becomes an ``ObjectStoreError``.
struct ErrorAnswer: Error {
    var status: Int
    var headers: HTTPHeaders
    var xml: XMLTree?

    /// The S3 error code, or the one a body-less answer (to HEAD) stands for.
    var code: String? {
        if let code = xml?.text("Code") { return code }
        switch status {
        case 301: return "PermanentRedirect"
        case 403: return "AccessDenied"
        case 412: return "PreconditionFailed"
        case 501: return "NotImplemented"
        case 503: return "SlowDown"
        default: return nil
        }
    }

    func error(for call: Call, region: String, credentials: String) -> ObjectStoreError {
        let bucket = call.bucket ?? ""
        let storeRegion = headers.first(name: "x-amz-bucket-region") ?? xml?.text("Region")
        if [301, 400].contains(status), let storeRegion, storeRegion != region {
            return .wrongRegion(bucket: bucket, used: region, storeRegion: storeRegion)
        }
        switch code ?? "" {
        case "NoSuchBucket":
            return .noSuchBucket(bucket)
        case "NoSuchKey":
            return .noSuchKey(bucket: bucket, key: call.key ?? "")
        case "" where status == 404:
            return call.key.map { .noSuchKey(bucket: bucket, key: $0) } ?? .noSuchBucket(bucket)
        case "AccessDenied", "AllAccessDisabled":
            return .accessDenied(bucket: bucket, action: call.action)
        case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidClientTokenId":
            return .credentialsRejected(code: code ?? "", credentials: credentials)
        case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
            return .wrongRegion(bucket: bucket, used: region, storeRegion: storeRegion)
        case "RequestTimeTooSkewed":
            return .clockSkew(serverTime: xml?.text("ServerTime"))
        case "PreconditionFailed":
            return .preconditionFailed(bucket: bucket, key: call.key ?? "", condition: call.condition.refusal)
        case "NotImplemented":
            let detail = [xml?.text("Message"), xml?.text("Header").map { "header \($0)" }].compactMap { $0 }.joined(separator: ", ")
            return .notImplemented(action: call.action, detail: detail)
        default:
            return .refused(action: call.action, status: status, code: code ?? "", message: xml?.text("Message") ?? "")
        }
    }
}

extension HTTPClientResponse {
    /// Reads and drops the (small) body, so the connection can be reused.
    func collected() async throws -> ByteBuffer {
        try await body.collect(upTo: 1 << 20)
    }
}
