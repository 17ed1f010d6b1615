import Foundation

/// A value several threads share, behind one lock: the one lock box, instead of a class
/// with its own `NSLock` for every counter or flag.
public final class Locked<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    public init(_ value: Value) { stored = value }

    public var value: Value { lock.withLock { stored } }

    /// Runs `body` with the value, under the lock; what `body` changes is kept.
    @discardableResult
    public func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        try lock.withLock { try body(&stored) }
    }
}

/// Why something ended, set once from whatever thread notices first (a lost state store,
/// a run stopped by a rejected key): the first reason wins.
public final class FirstReason: Sendable {
    private let text = Locked<String?>(nil)

    public init() {}

    public var reason: String? { text.value }

    /// Records `reason` unless one is already recorded; true for the first.
    @discardableResult
    public func set(_ reason: String) -> Bool {
        text.withLock { current in
            guard current == nil else { return false }
            current = reason
            return true
        }
    }
}
