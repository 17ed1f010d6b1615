import Foundation

/// A count that several threads may bump: a partition's creates, a run's interrupts.
public final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    public init() {}
    /// Counts one more and returns the new count.
    @discardableResult public func increment() -> Int { lock.withLock { count += 1; return count } }
    public var value: Int { lock.withLock { count } }
}
