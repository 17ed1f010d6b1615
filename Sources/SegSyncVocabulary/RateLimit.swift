/// How fast a client may call the API: a steady rate plus a burst allowance.
///
/// This is the manifest's `api: { rateLimit: { perSecond: 10, burst: 20 } }`.
public struct RateLimit: Sendable, Hashable, Codable {
    public var perSecond: Double
    public var burst: Int

    public init(perSecond: Double = 10, burst: Int = 20) {
        self.perSecond = perSecond
        self.burst = burst
    }

    /// A sentence for a limit that cannot work, or `nil`; for the manifest's validation.
    public func problem() -> String? {
        guard perSecond.isFinite, perSecond > 0 else {
            return "api.rateLimit.perSecond must be a number above 0, not \(perSecond)."
        }
        guard burst >= 1 else { return "api.rateLimit.burst must be at least 1, not \(burst)." }
        return nil
    }
}
