import Foundation
import FullStoryAPI
import FullStoryContract
import SegSyncVocabulary
import Testing

/// A clock that only moves when the code under test sleeps on it.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private let origin = ContinuousClock.now
    private var offset: Duration = .zero
    private var sleeps: [Duration] = []

    var now: ContinuousClock.Instant { lock.withLock { origin + offset } }
    var waits: [Duration] { lock.withLock { sleeps } }

    func advance(_ duration: Duration) {
        lock.withLock { offset += duration }
    }

    func sleep(_ duration: Duration) {
        lock.withLock {
            sleeps.append(duration)
            offset += duration
        }
    }

    func limiter(_ limit: RateLimit, cooldown: Duration = .seconds(60)) -> RateLimiter {
        RateLimiter(limit, cooldown: cooldown, now: { self.now }, sleep: { self.sleep($0) })
    }
}

@Suite("Rate limiter", .timeLimit(.minutes(5)))
struct RateLimiterTests {
    @Test("a waiter cancelled while it waits gives its token back")
    func cancelledWaitKeepsToken() async throws {
        let clock = ManualClock()
        // Sleeps throw when cancelled, as Task.sleep does; this one is cancelled at once.
        let limiter = RateLimiter(RateLimit(perSecond: 1, burst: 1), now: { clock.now }, sleep: { _ in throw CancellationError() })
        try await limiter.acquire()  // the burst token
        await #expect(throws: CancellationError.self) { try await limiter.acquire() }
        // One second later exactly one token has accrued: the cancelled waiter spent none.
        clock.advance(.seconds(1))
        try await limiter.acquire()
        await #expect(throws: CancellationError.self) { try await limiter.acquire() }
    }

    @Test("a burst goes out at once, then calls are spaced at the rate")
    func burstThenRate() async throws {
        let clock = ManualClock()
        let limiter = clock.limiter(RateLimit(perSecond: 10, burst: 20))
        for _ in 0..<20 { try await limiter.acquire() }
        #expect(clock.waits.isEmpty)
        for _ in 0..<5 { try await limiter.acquire() }
        #expect(clock.waits == Array(repeating: .milliseconds(100), count: 5))
    }

    @Test("tokens come back with time, up to the burst")
    func refills() async throws {
        let clock = ManualClock()
        let limiter = clock.limiter(RateLimit(perSecond: 2, burst: 3))
        for _ in 0..<3 { try await limiter.acquire() }
        clock.advance(.seconds(60))
        for _ in 0..<3 { try await limiter.acquire() }
        #expect(clock.waits.isEmpty)
        try await limiter.acquire()
        #expect(clock.waits == [.milliseconds(500)])
    }

    @Test("a 429 halves the rate, holds calls until Retry-After, and the rate recovers after the cooldown")
    func slowsDownAfter429() async throws {
        let clock = ManualClock()
        let limiter = clock.limiter(RateLimit(perSecond: 10, burst: 5), cooldown: .seconds(30))
        await limiter.didReceiveTooManyRequests(retryAfter: .seconds(2))
        #expect(await limiter.currentRate == 5)
        // The burst saved before the 429 is gone and nothing accrues during the block:
        // the first call waits the 2 s plus one token at the halved rate (1 / 5 per second).
        try await limiter.acquire()
        #expect(clock.waits == [.milliseconds(2200)])
        try await limiter.acquire()
        #expect(clock.waits == [.milliseconds(2200), .milliseconds(200)])

        await limiter.didReceiveTooManyRequests(retryAfter: nil)
        #expect(await limiter.currentRate == 2.5)
        clock.advance(.seconds(31))
        #expect(await limiter.currentRate == 10)
    }

    @Test("repeated 429s never stop calls altogether")
    func floor() async {
        let clock = ManualClock()
        let limiter = clock.limiter(RateLimit(perSecond: 16, burst: 1))
        for _ in 0..<20 { await limiter.didReceiveTooManyRequests(retryAfter: nil) }
        #expect(await limiter.currentRate == 1)
    }

    @Test("a limit that cannot work is named in a sentence")
    func validation() {
        #expect(RateLimit().problem() == nil)
        #expect(RateLimit(perSecond: 0, burst: 5).problem() == "api.rateLimit.perSecond must be a number above 0, not 0.0.")
        #expect(RateLimit(perSecond: 1, burst: 0).problem() == "api.rateLimit.burst must be at least 1, not 0.")
    }

    @Test("every call of a client goes through its limiter")
    func clientUsesLimiter() async throws {
        let clock = ManualClock()
        let limiter = clock.limiter(RateLimit(perSecond: 1, burst: 3))
        try await withHarness { h in
            let client = try FullStoryClient(configuration: h.client.configuration, rateLimiter: limiter)
            do {
                _ = try await client.listSegments(pageSize: 100)  // 3 pages: the burst
                #expect(clock.waits.isEmpty)
                _ = try await client.getSegment("everyone")
                _ = try await client.getSegment("power_users")
                #expect(clock.waits == [.seconds(1), .seconds(1)])
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }
}
