import SegSyncVocabulary
import FullStoryContract
/// A token bucket shared by every API call of one client.
///
/// Each call takes a token; tokens refill at `perSecond` up to `burst`. A caller that finds
/// the bucket empty reserves the next token and sleeps until it is due, so waiting callers
/// are served in arrival order and the long-run rate never exceeds the limit.
///
/// After a 429 the server is telling us our limit is too high, so the rate is halved
/// (repeatedly, down to a floor) for `cooldown`, and no call at all goes out before the
/// server's `Retry-After` has passed. Once the cooldown passes without another 429, the
/// configured rate comes back.
public actor RateLimiter {
    public let limit: RateLimit
    /// How long a slow-down after a 429 lasts.
    public let cooldown: Duration
    private let now: @Sendable () -> ContinuousClock.Instant
    private let sleep: @Sendable (Duration) async throws -> Void

    private var tokens: Double
    private var lastRefill: ContinuousClock.Instant
    private var slowdownFactor: Double = 1
    private var slowUntil: ContinuousClock.Instant?
    private var blockedUntil: ContinuousClock.Instant?

    /// The slowest the limiter goes after repeated 429s, as a fraction of the limit.
    private static let minimumFactor = 1.0 / 16

    public init(
        _ limit: RateLimit,
        cooldown: Duration = .seconds(60),
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now },
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        // Callers validate with `RateLimit.problem()`; a limit that slipped through is made
        // workable (one call per 1000 s at worst) rather than dividing by zero.
        let perSecond = limit.perSecond.isFinite && limit.perSecond > 0 ? limit.perSecond : 0.001
        self.limit = RateLimit(perSecond: perSecond, burst: max(1, limit.burst))
        self.cooldown = cooldown
        self.now = now
        self.sleep = sleep
        self.tokens = Double(self.limit.burst)
        self.lastRefill = now()
    }

    /// The rate in force now, in calls per second.
    public var currentRate: Double {
        expireSlowdown(at: now())
        return limit.perSecond * slowdownFactor
    }

    /// Waits until a call may go out, then takes its token.
    public func acquire() async throws {
        let current = now()
        expireSlowdown(at: current)
        refill(at: current)
        var wait: Duration = .zero
        if let blockedUntil, blockedUntil > current {
            wait = blockedUntil - current
        }
        // Reserve the token before suspending: the actor may run other acquires while
        // this one sleeps, and they must queue behind it. A token owed accrues only
        // after any block, so it adds to the block's wait.
        tokens -= 1
        if tokens < 0 {
            let rate = limit.perSecond * slowdownFactor
            wait += .milliseconds(Int64((-tokens / rate * 1000).rounded(.up)))
        }
        if wait > .zero {
            do {
                try await sleep(wait)
            } catch {
                // Cancelled while waiting: the call never goes out, so its token is not spent.
                tokens += 1
                throw error
            }
        }
    }

    /// Tells the limiter the server answered 429.
    public func didReceiveTooManyRequests(retryAfter: Duration?) {
        let current = now()
        refill(at: current)
        slowdownFactor = max(Self.minimumFactor, slowdownFactor / 2)
        slowUntil = current + cooldown
        // Whatever burst was saved up is what got us here: spend none of it.
        tokens = min(tokens, 0)
        if let retryAfter {
            let until = current + retryAfter
            blockedUntil = max(blockedUntil ?? until, until)
        }
    }

    private func refill(at current: ContinuousClock.Instant) {
        // No credit builds up while the server has told us to hold off.
        var from = lastRefill
        if let blockedUntil, blockedUntil > from {
            from = min(blockedUntil, current)
        }
        let elapsed = current - from
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if seconds > 0 {
            tokens = min(Double(limit.burst), tokens + seconds * limit.perSecond * slowdownFactor)
        }
        if current > lastRefill { lastRefill = current }
    }

    private func expireSlowdown(at current: ContinuousClock.Instant) {
        if let slowUntil, current >= slowUntil {
            refill(at: slowUntil)
            self.slowUntil = nil
            slowdownFactor = 1
        }
    }
}
