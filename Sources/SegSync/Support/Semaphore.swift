/// Bounds how many tasks do something at once (downloads), first come first served.
///
/// A waiter that is cancelled stops waiting at once (``wait()`` throws
/// `CancellationError`) and takes no permit, so cancellation never leaks one.
actor Semaphore {
    private var available: Int
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    private var nextID: UInt64 = 0
    private let capacity: Int
    /// Waiting for the moment no permit is taken and no one waits (``idle()``).
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) {
        available = count
        capacity = count
    }

    /// Returns once no permit is taken and no one waits for one: at once when that is so.
    func idle() async {
        guard available < capacity || !waiters.isEmpty else { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    func wait() async throws {
        if available > 0 {
            available -= 1
            return
        }
        let id = nextID
        nextID += 1
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // The body runs on this actor, before any cancel(id) can: a cancellation
                // that came first is seen here, a later one finds the waiter queued.
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    waiters.append((id, continuation))
                }
            }
        } onCancel: {
            Task { await self.cancel(id) }
        }
    }

    func signal() {
        if waiters.isEmpty {
            available += 1
            if available == capacity {
                let idle = idleWaiters
                idleWaiters.removeAll()
                idle.forEach { $0.resume() }
            }
        } else {
            waiters.removeFirst().continuation.resume()
        }
    }

    private func cancel(_ id: UInt64) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(throwing: CancellationError())
    }
}
