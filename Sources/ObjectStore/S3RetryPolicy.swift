import Foundation
import SegSyncVocabulary

/// When a request to the object store is tried again, and how long to wait first.
///
/// Retried: 500, 502, 503, 504 (and `SlowDown`, `InternalError`, `RequestTimeout`,
/// `ConditionalRequestConflict` whatever their status), and connections that failed or
/// broke, after waits of the one ``Backoff`` the API's retries use too (full jitter, so
/// many runners throttled together do not retry in lock step).
///
/// A conditional write retried after a lost answer may be refused (412) because of its
/// own first attempt; the caller compares the object's checksum to tell.
public struct S3RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// Returns a value in `[0, 1)`: the jitter factor.
    public var random: @Sendable () -> Double
    public var sleep: @Sendable (Duration) async throws -> Void

    public init(
        maxAttempts: Int = 5,
        baseDelay: Duration = .milliseconds(200),
        maxDelay: Duration = .seconds(10),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.random = random
        self.sleep = sleep
    }

    /// Whether an answer with this status and S3 error code may succeed if tried again.
    public static func isTransient(status: Int, code: String?) -> Bool {
        if let code, ["SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "ConditionalRequestConflict"].contains(code) {
            return true
        }
        return [500, 502, 503, 504].contains(status)
    }

    /// The wait after attempt `attempt` (1-based).
    public func backoff(attempt: Int) -> Duration {
        Backoff.fullJitter(attempt: attempt, baseDelay: baseDelay, maxDelay: maxDelay, random: random())
    }
}
