/// One at a time, first come first served, and deaf to cancellation: a store's
/// transaction runs to its end in a task of its own, so an interrupted run still records
/// what it learnt (``StateStore/commit(_:)`` under Ctrl-C), and never leaves a
/// transaction half done on the connection.
actor AsyncMutex {
    private var held = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    private func lock() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func unlock() {
        if waiters.isEmpty {
            held = false
        } else {
            waiters.removeFirst().resume()
        }
    }

    /// Runs `body` holding the mutex, in a task cancellation does not reach.
    nonisolated func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task {
            await self.lock()
            do {
                let result = try await body()
                await self.unlock()
                return result
            } catch {
                await self.unlock()
                throw error
            }
        }.value
    }
}
