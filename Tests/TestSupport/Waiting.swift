import Foundation

/// A value that arrives once (a child's exit status, a pipe's contents) and any number of
/// tasks await, without holding a thread while they wait.
public final class Completion<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Value?
    private var waiting: [CheckedContinuation<Value, Never>] = []

    public init() {}

    /// Sets the value (the first one counts) and wakes everyone waiting for it.
    public func finish(_ value: Value) {
        let woken: [CheckedContinuation<Value, Never>] = lock.withLock {
            guard result == nil else { return [] }
            result = value
            defer { waiting = [] }
            return waiting
        }
        for continuation in woken { continuation.resume(returning: value) }
    }

    /// The value, once it has been set.
    public func value() async -> Value {
        await withCheckedContinuation { continuation in
            let known: Value? = lock.withLock {
                if let result { return result }
                waiting.append(continuation)
                return nil
            }
            if let known { continuation.resume(returning: known) }
        }
    }
}

/// Waits for something another process makes happen and nothing announces (a line in a
/// request log, a row in a database), checking every 50 ms. `timeout` only bounds a test
/// whose event never comes: nothing asserts how long it took, so a loaded machine makes
/// the wait longer, not the test fail.
public func waitUntil(timeout: TimeInterval = 60, _ happened: () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while await !happened() {
        guard Date() < deadline else { return false }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return true
}
