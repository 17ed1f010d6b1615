/// The one backoff every retry waits by, the API's and the object store's: exponential
/// with full jitter. The n-th wait is uniform in `[0, min(maxDelay, baseDelay · 2^(n-1)))`,
/// which spreads many clients out instead of having them retry in lock step.
public enum Backoff {
    /// The wait after attempt `attempt` (1-based); `random` gives the jitter factor in `[0, 1)`.
    public static func fullJitter(attempt: Int, baseDelay: Duration, maxDelay: Duration, random: Double) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let ceiling = min(maxDelay, baseDelay * (1 << exponent))
        return ceiling * min(max(random, 0), 1)
    }
}
