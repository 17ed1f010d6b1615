import Foundation

/// A count that several threads may bump: a partition's creates, a run's interrupts.
public final class Counter: Sendable {
    private let count = Locked(0)
    public init() {}
    /// Counts one more and returns the new count.
    @discardableResult public func increment() -> Int { count.withLock { $0 += 1; return $0 } }
    public var value: Int { count.value }
}
