import Foundation
import SegSyncVocabulary
import FullStoryContract

/// The one retry policy every API call and download goes through.
///
/// - 429 waits for `Retry-After` (seconds or an HTTP-date) when the server sends one,
///   else backs off like a 5xx.
/// - 5xx, connection failures, resets and timeouts back off exponentially with full
///   jitter: the n-th wait is uniform in `[0, min(maxDelay, baseDelay · 2^(n-1)))`, which
///   spreads many clients out instead of having them retry in lock step.
/// - Retries stop after `maxAttempts` attempts or once the next wait would pass
///   `maxTotalTime` since the first attempt, whichever comes first.
///
/// **Creating an export is the one request that is not safe to repeat.** It is a POST:
/// if it reached the server, repeating it starts a second export (work on the server and,
/// for the production API, a second file). So a create is retried only when the outcome
/// is known:
/// - the connection could not be made at all (`connectFailed`): nothing was sent;
/// - the server answered 429, or 503 with a `Retry-After`: it said "not now", so nothing
///   was created.
///
/// A timeout or reset after the request was written, or any other 5xx, leaves the outcome
/// unknown: the client then fails with ``FullStoryAPIError/createOutcomeUnknown(cause:)``
/// and leaves the choice to the caller (which may re-create and accept a duplicate, or
/// stop). Every other call (GETs) is idempotent and retried on all transient failures.
///
/// The random source, the sleep and the clocks are injectable so tests can check the
/// exact waits without waiting.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var maxTotalTime: Duration
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// Returns a value in `[0, 1)`; the jitter factor.
    public var random: @Sendable () -> Double
    /// How the policy waits between attempts.
    public var sleep: @Sendable (Duration) async throws -> Void
    /// Monotonic time, for the total-time budget.
    public var monotonicNow: @Sendable () -> ContinuousClock.Instant
    /// Wall-clock time, to turn an HTTP-date `Retry-After` into a wait.
    public var wallNow: @Sendable () -> Date

    public init(
        maxAttempts: Int = 6,
        maxTotalTime: Duration = .seconds(300),
        baseDelay: Duration = .milliseconds(500),
        maxDelay: Duration = .seconds(30),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
        monotonicNow: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now },
        wallNow: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.maxTotalTime = maxTotalTime
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.random = random
        self.sleep = sleep
        self.monotonicNow = monotonicNow
        self.wallNow = wallNow
    }

    /// Whether repeating a request can have side effects on the server.
    public enum RequestKind: Sendable, Hashable {
        /// GETs and downloads: repeating them is harmless.
        case idempotent
        /// `POST /segments/v1/exports`: see the type's documentation.
        case createExport
    }

    /// What one attempt ended with, as far as retrying is concerned.
    public enum Outcome: Sendable, Hashable {
        /// The server answered with this status (and maybe a `Retry-After`).
        case status(Int, retryAfter: Duration?)
        /// No connection could be made: the request was certainly not sent.
        case connectFailed
        /// Timeout or reset once connected: the request may have reached the server.
        case connectionLost
    }

    /// What to do after a failed attempt.
    public enum Decision: Sendable, Hashable {
        case retry(after: Duration)
        case giveUp
    }

    /// The decision after attempt number `attempt` (1-based) ended with `outcome`,
    /// `elapsed` after the first attempt started. Pure: no waiting happens here.
    public func decision(after outcome: Outcome, kind: RequestKind, attempt: Int, elapsed: Duration) -> Decision {
        guard attempt < maxAttempts else { return .giveUp }
        let wait: Duration
        switch outcome {
        case .status(429, let retryAfter):
            wait = retryAfter ?? backoff(attempt: attempt)
        case .status(503, let retryAfter?):
            wait = retryAfter
        case .status(let code, _) where (500...599).contains(code):
            guard kind == .idempotent else { return .giveUp }
            wait = backoff(attempt: attempt)
        case .status:
            return .giveUp
        case .connectFailed:
            wait = backoff(attempt: attempt)
        case .connectionLost:
            guard kind == .idempotent else { return .giveUp }
            wait = backoff(attempt: attempt)
        }
        guard elapsed + wait <= maxTotalTime else { return .giveUp }
        return .retry(after: wait)
    }

    /// Full-jitter exponential backoff for the wait after attempt `attempt` (1-based).
    public func backoff(attempt: Int) -> Duration {
        Backoff.fullJitter(attempt: attempt, baseDelay: baseDelay, maxDelay: maxDelay, random: random())
    }

    /// The longest wait a `Retry-After` can ask for; longer values (or dates further off)
    /// are cut to this. Any wait past ``maxTotalTime`` makes the policy give up instead.
    public static let retryAfterCap: Duration = .seconds(3600)

    /// A `Retry-After` value read with ``readRetryAfter(_:now:)``.
    public struct RetryAfter: Sendable, Hashable {
        /// What to wait: the server's value, at most ``RetryPolicy/retryAfterCap``.
        public var wait: Duration
        /// Whether the server asked for more than the cap.
        public var capped: Bool
    }

    /// Parses a `Retry-After` value: delta-seconds (`"120"`, also fractional) or an
    /// HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`, also the obsolete RFC 850 and asctime
    /// forms). A date in the past means "now"; negatives and anything unreadable are `nil`.
    /// No value traps: huge numbers and far-off dates are capped at ``retryAfterCap``.
    public static func parseRetryAfter(_ value: String, now: Date) -> Duration? {
        readRetryAfter(value, now: now)?.wait
    }

    /// ``parseRetryAfter(_:now:)`` that also says whether the value was capped.
    public static func readRetryAfter(_ value: String, now: Date) -> RetryAfter? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.utf8.count <= 100 else { return nil }
        let capSeconds = Double(retryAfterCap.components.seconds)
        func capped(seconds: Double) -> RetryAfter? {
            guard seconds.isFinite, seconds >= 0 else { return nil }
            if seconds > capSeconds { return RetryAfter(wait: retryAfterCap, capped: true) }
            return RetryAfter(wait: .milliseconds(Int64((seconds * 1000).rounded())), capped: false)
        }
        // Seconds, whole or fractional, read as a Double (which holds any digit string the
        // length guard lets through) and capped before any integer conversion.
        if trimmed.utf8.allSatisfy({ ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: ".") }),
            let seconds = Double(trimmed)
        {
            return capped(seconds: seconds)
        }
        if let date = HTTPDate.parse(trimmed) {
            return capped(seconds: max(0, date.timeIntervalSince(now)))
        }
        return nil
    }

    /// Runs `attempt` until it succeeds or this policy gives up.
    ///
    /// `attempt` throws ``AttemptFailure`` for failures that may be retried (everything
    /// else is rethrown at once). `willRetry` is told about each retry before the wait,
    /// e.g. to slow the rate limiter down after a 429.
    func run<T: Sendable>(
        _ kind: RequestKind,
        willRetry: (AttemptFailure, Duration) async -> Void = { _, _ in },
        attempt: (Int) async throws -> T
    ) async throws -> T {
        let started = monotonicNow()
        var number = 1
        while true {
            do {
                return try await attempt(number)
            } catch let failure as AttemptFailure {
                let elapsed = monotonicNow() - started
                switch decision(after: failure.outcome, kind: kind, attempt: number, elapsed: elapsed) {
                case .retry(let wait):
                    await willRetry(failure, wait)
                    try await sleep(wait)
                    number += 1
                case .giveUp:
                    throw failure.finalError(kind: kind)
                }
            }
        }
    }
}

/// A failed attempt: how it ended (for the retry decision) and the error to report if
/// it is the last one.
struct AttemptFailure: Error {
    var outcome: RetryPolicy.Outcome
    var error: FullStoryAPIError

    /// A create whose outcome is unknown is reported as such, whatever the cause.
    func finalError(kind: RetryPolicy.RequestKind) -> FullStoryAPIError {
        guard kind == .createExport else { return error }
        switch outcome {
        case .connectionLost:
            return .createOutcomeUnknown(cause: causeText)
        case .status(let code, let retryAfter) where (500...599).contains(code):
            // 503 with Retry-After is a clear "not now" (nothing created); only a
            // give-up after those keeps the plain server error.
            if code == 503, retryAfter != nil { return error }
            // Not an answer that bounds when: a gateway's 502 or 504 can come back
            // before the service behind it has made the export.
            return .createOutcomeUnknown(cause: "the server answered HTTP \(code)")
        case .status, .connectFailed:
            return error
        }
    }

    private var causeText: String {
        if case .transport(let cause) = error { return cause }
        return error.description
    }
}
