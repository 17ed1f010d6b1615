import Foundation

/// Everything that can go wrong talking to an object store, each with a sentence a user
/// can act on. No case carries a secret, a session token or a presigned URL.
public enum ObjectStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No credentials anywhere; `looked` lists each place and why it gave none.
    case noCredentials(looked: [String])
    /// A source had half a key pair, or one of two required variables.
    case incompleteCredentials(String)
    /// `AssumeRoleWithWebIdentity` could not be done.
    case webIdentity(String)
    /// The store does not know the access key, or the signature did not match the secret;
    /// `credentials` is ``Credentials/description`` (key id and source, no secret).
    case credentialsRejected(code: String, credentials: String)
    case accessDenied(bucket: String, action: String)
    case noSuchBucket(String)
    case noSuchKey(bucket: String, key: String)
    /// The bucket lives in another region than the one signed for.
    case wrongRegion(bucket: String, used: String, storeRegion: String?)
    /// The store refused the request's time (`RequestTimeTooSkewed`).
    case clockSkew(serverTime: String?)
    /// A conditional write (`If-None-Match: *` or `If-Match`) was refused: 412.
    case preconditionFailed(bucket: String, key: String, condition: String)
    /// The store does not implement something segsync needs.
    case notImplemented(action: String, detail: String)
    /// Throttling or server errors outlasted every retry.
    case unavailable(action: String, status: Int, code: String, attempts: Int)
    /// Any other answer the store gave.
    case refused(action: String, status: Int, code: String, message: String)
    /// The connection failed (after retries).
    case transport(action: String, cause: String)
    /// The store answered something this client cannot read.
    case invalidResponse(action: String, detail: String)
    /// The endpoint or bucket cannot be used as given.
    case invalidConfiguration(String)
    /// A multipart upload was given parts it cannot accept (see ``MultipartUpload``).
    case uploadMisuse(String)

    public var description: String {
        switch self {
        case .noCredentials(let looked):
            return "No AWS credentials found. Looked at: " + looked.joined(separator: "; ")
                + ". Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a web identity, or a profile in the shared credentials file."
        case .incompleteCredentials(let sentence), .invalidConfiguration(let sentence), .uploadMisuse(let sentence):
            return sentence
        case .webIdentity(let detail):
            return "Web identity credentials failed: \(detail)"
        case .credentialsRejected(let code, let credentials):
            let what =
                switch code {
                case "SignatureDoesNotMatch": "the secret access key does not match it"
                case "InvalidToken", "ExpiredToken": "the session token is invalid or expired"
                default: "the store does not know this access key"
                }
            return "The object store rejected \(credentials): \(what) (\(code)). Check the credentials there."
        case .accessDenied(let bucket, let action):
            return "Access denied to bucket '\(bucket)' for \(action): the credentials need permission for it (an IAM policy or a bucket policy)."
        case .noSuchBucket(let bucket):
            return "The bucket '\(bucket)' does not exist in this store (check its name, the endpoint and the region)."
        case .noSuchKey(let bucket, let key):
            return "No object '\(key)' in bucket '\(bucket)'."
        case .wrongRegion(let bucket, let used, let storeRegion):
            if let storeRegion {
                return "The bucket '\(bucket)' is in region \(storeRegion), not \(used): set the region to \(storeRegion)."
            }
            return "The bucket '\(bucket)' is not in region \(used) and the store did not say which: set the bucket's region."
        case .clockSkew(let serverTime):
            let told = serverTime.map { " (the store's time is \($0))" } ?? ""
            return "The store refused the request's time\(told): this machine's clock is off by more than 15 minutes; synchronize it (NTP)."
        case .preconditionFailed(let bucket, let key, let condition):
            return "The store refused to write '\(key)' in bucket '\(bucket)' because \(condition): someone else wrote it; nothing was overwritten."
        case .notImplemented(let action, let detail):
            return "The object store does not support \(action)\(detail.isEmpty ? "" : " (\(detail))"), which segsync needs."
        case .unavailable(let action, let status, let code, let attempts):
            return "The object store stayed unavailable for \(action) (HTTP \(status) \(code)) after \(attempts) attempts; try again later."
        case .refused(let action, let status, let code, let message):
            return "The object store refused \(action): HTTP \(status) \(code)\(message.isEmpty ? "" : ": \(message)")."
        case .transport(let action, let cause):
            return "Could not reach the object store for \(action): \(cause)."
        case .invalidResponse(let action, let detail):
            return "The object store's answer to \(action) could not be read: \(detail)."
        }
    }
}
