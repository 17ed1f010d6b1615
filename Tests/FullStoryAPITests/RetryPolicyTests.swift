import Foundation
import FullStoryAPI
import FullStoryContract
import Testing

@Suite("Retry policy", .timeLimit(.minutes(5)))
struct RetryPolicyTests {
    let policy = RetryPolicy(
        maxAttempts: 5, maxTotalTime: .seconds(60), baseDelay: .seconds(1), maxDelay: .seconds(8), random: { 0.5 })

    @Test(
        "what is retried, for reads and for creating an export",
        arguments: [
            // (outcome, retried as a read, retried as a create)
            (RetryPolicy.Outcome.status(429, retryAfter: nil), true, true),
            (.status(429, retryAfter: .seconds(3)), true, true),
            (.status(503, retryAfter: .seconds(2)), true, true),
            (.status(503, retryAfter: nil), true, false),
            (.status(500, retryAfter: nil), true, false),
            (.status(502, retryAfter: nil), true, false),
            (.connectFailed, true, true),
            (.connectionLost, true, false),
            (.status(400, retryAfter: nil), false, false),
            (.status(401, retryAfter: nil), false, false),
            (.status(404, retryAfter: nil), false, false),
        ]
    )
    func retriedOrNot(outcome: RetryPolicy.Outcome, read: Bool, create: Bool) {
        let asRead = policy.decision(after: outcome, kind: .idempotent, attempt: 1, elapsed: .zero)
        let asCreate = policy.decision(after: outcome, kind: .createExport, attempt: 1, elapsed: .zero)
        #expect((asRead != .giveUp) == read)
        #expect((asCreate != .giveUp) == create)
    }

    @Test("Retry-After is waited for exactly")
    func honoursRetryAfter() {
        #expect(
            policy.decision(after: .status(429, retryAfter: .seconds(7)), kind: .idempotent, attempt: 1, elapsed: .zero)
                == .retry(after: .seconds(7)))
        #expect(
            policy.decision(after: .status(503, retryAfter: .zero), kind: .createExport, attempt: 2, elapsed: .zero)
                == .retry(after: .zero))
    }

    @Test("backoff is full jitter under an exponential ceiling")
    func backoff() {
        // random() = 0.5: half of 1, 2, 4, 8, 8 (capped) seconds.
        #expect(
            (1...5).map(policy.backoff(attempt:)) == [
                .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(4),
            ])
        var low = policy
        low.random = { 0 }
        #expect(low.backoff(attempt: 3) == .zero)
        var high = policy
        high.random = { 0.999 }
        #expect(high.backoff(attempt: 30) < .seconds(8))
        #expect(high.backoff(attempt: 30) > .milliseconds(7900))
    }

    @Test("stops after the attempt limit and the time budget")
    func bounded() {
        #expect(policy.decision(after: .connectFailed, kind: .idempotent, attempt: 4, elapsed: .zero) != .giveUp)
        #expect(policy.decision(after: .connectFailed, kind: .idempotent, attempt: 5, elapsed: .zero) == .giveUp)
        // 58 s spent, a 7 s Retry-After would end past the 60 s budget.
        #expect(
            policy.decision(
                after: .status(429, retryAfter: .seconds(7)), kind: .idempotent, attempt: 1, elapsed: .seconds(58))
                == .giveUp)
        #expect(
            policy.decision(
                after: .status(429, retryAfter: .seconds(2)), kind: .idempotent, attempt: 1, elapsed: .seconds(58))
                == .retry(after: .seconds(2)))
    }

    @Test("Retry-After is read as seconds or as an HTTP-date")
    func parsesRetryAfter() {
        let now = Date(timeIntervalSince1970: 1_445_412_420)  // Wed, 21 Oct 2015 07:27:00 GMT
        #expect(RetryPolicy.parseRetryAfter("120", now: now) == .seconds(120))
        #expect(RetryPolicy.parseRetryAfter(" 0 ", now: now) == .zero)
        #expect(RetryPolicy.parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now: now) == .seconds(60))
        #expect(RetryPolicy.parseRetryAfter("Wednesday, 21-Oct-15 07:28:30 GMT", now: now) == .seconds(90))
        #expect(RetryPolicy.parseRetryAfter("Wed Oct 21 07:29:00 2015", now: now) == .seconds(120))
        #expect(RetryPolicy.parseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now: now) == .zero)
        #expect(RetryPolicy.parseRetryAfter("-5", now: now) == nil)
        #expect(RetryPolicy.parseRetryAfter("soon", now: now) == nil)
    }

    @Test("no Retry-After a server sends can trap: huge values are capped and said so", arguments: [
        ("99999999999999999999", RetryPolicy.retryAfterCap, true),
        ("1e400", nil, false), ("1.5", .milliseconds(1500), false), ("99999999999999999999.5", RetryPolicy.retryAfterCap, true),
        ("3600", .seconds(3600), false), ("3601", RetryPolicy.retryAfterCap, true), ("00000000000000000000000007", .seconds(7), false),
        ("-1", nil, false), ("-99999999999999999999", nil, false), ("+5", nil, false), ("nan", nil, false), ("inf", nil, false),
        ("", nil, false), ("Fri, 31 Dec 9999 23:59:59 GMT", RetryPolicy.retryAfterCap, true), (String(repeating: "9", count: 5000), nil, false),
        // Found by the fuzzer: Foundation's DateFormatter trapped on these two characters.
        ("S\u{34C}", nil, false), ("Wed, 21 Oct 2015 07:28:00 G\u{34C}MT", nil, false), ("Wed, 31 Feb 2015 07:28:00 GMT", nil, false),
        ("Wed, 21 Oct 2015 25:28:00 GMT", nil, false), ("Wed, 21 Oct 2015 07:28 GMT", nil, false),
    ] as [(String, Duration?, Bool)])
    func hostileRetryAfter(value: String, wait: Duration?, capped: Bool) {
        let read = RetryPolicy.readRetryAfter(value, now: Date(timeIntervalSince1970: 1_445_412_420))
        #expect(read?.wait == wait)
        #expect((read?.capped ?? false) == capped)
    }

    @Test("a wait longer than the time budget gives up instead of sleeping for it")
    func cappedWaitGivesUp() {
        let policy = RetryPolicy(maxTotalTime: .seconds(300))
        #expect(policy.decision(after: .status(429, retryAfter: RetryPolicy.retryAfterCap), kind: .idempotent,
                                attempt: 1, elapsed: .zero) == .giveUp)
    }
}
