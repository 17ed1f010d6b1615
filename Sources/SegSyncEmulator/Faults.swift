/// The faults the emulator can inject, each drawn from its own seeded generator so that
/// turning one rate up does not change when the others fire.
actor FaultInjector {
    enum Kind: String, CaseIterable, Sendable {
        case tooManyRequests = "429"
        case serverError = "5xx"
        case reset
        case drop
        case truncate
        case fail
        case expiredLink = "expired-link"
        case unreadableCreate = "unreadable"
        case shortRange = "short"
    }

    private var generators: [Kind: SplitMix64]
    private let rates: [Kind: Double]
    private var remaining: Int?
    /// Where in a body a drop or truncation happens.
    private var cuts: SplitMix64

    init(_ configuration: EmulatorConfiguration) {
        rates = [
            .tooManyRequests: configuration.rate429, .serverError: configuration.rate5xx,
            .reset: configuration.rateReset,
            .drop: configuration.rateDrop, .truncate: configuration.rateTruncate, .fail: configuration.rateFail,
            .expiredLink: configuration.rateExpiredLink,
            .unreadableCreate: configuration.rateUnreadableCreate, .shortRange: configuration.rateShortRange,
        ]
        generators = Dictionary(
            uniqueKeysWithValues: Kind.allCases.map {
                ($0, SplitMix64(seed: configuration.seed ^ UInt64(digestOf: $0.rawValue)))
            }
        )
        cuts = SplitMix64(seed: configuration.seed ^ UInt64(digestOf: "cuts"))
        remaining = configuration.maxFaults
        htmlPollsLeft = configuration.htmlPolls
        slowCreatesLeft = configuration.slowCreates
        if let from = configuration.rejectKeyFrom { rejectedCalls = from..<(from + configuration.rejectKeyCount) }
    }

    private var htmlPollsLeft: Int
    private var slowCreatesLeft: Int?

    /// Whether this create waits `createLatency` (the first `slowCreates` do; all without a limit).
    func slowsNextCreate() -> Bool {
        guard let left = slowCreatesLeft else { return true }
        slowCreatesLeft = left - 1
        return left > 0
    }
    private var rejectedCalls: Range<Int>?
    private var apiCalls = 0

    /// Whether this poll is answered with an HTML page (the first `htmlPolls` are).
    func answersPollWithHTML() -> Bool {
        guard htmlPollsLeft > 0 else { return false }
        htmlPollsLeft -= 1
        return true
    }

    /// Counts one API call; whether its key is rejected (it falls in the rejected range).
    func rejectsKeyOfNextCall() -> Bool {
        apiCalls += 1
        return rejectedCalls?.contains(apiCalls) ?? false
    }

    /// Whether this fault happens now. A rate of 0 draws nothing, so enabling no faults
    /// leaves every generator untouched.
    func fires(_ kind: Kind) -> Bool {
        guard let rate = rates[kind], rate > 0 else { return false }
        if let remaining, remaining <= 0 { return false }
        guard generators[kind, default: SplitMix64(seed: 0)].nextUnit() < rate else { return false }
        if let remaining { self.remaining = remaining - 1 }
        return true
    }

    /// How many of `length` bytes to send before cutting the connection: 10–90 %.
    func cutPoint(of length: Int64) -> Int64 {
        let fraction = 0.1 + 0.8 * cuts.nextUnit()
        return max(1, min(length - 1, Int64(Double(length) * fraction)))
    }
}
