import Foundation

/// The one writer of state, lockfile and `SHA256SUMS` during an apply.
///
/// Every change lands in memory at once. What must survive a crash is committed to the
/// ``StateStore`` as it happens, one transaction per change: operation ids, failures,
/// finished files. Progress of running operations stays in memory and is committed at
/// the end. The lockfile and `SHA256SUMS` are rewritten now and then — at most every
/// `interval`, and less often as they grow — and at the end.
///
/// The lockfile and `SHA256SUMS` only ever list files that are fully in place: entries
/// are added after a file's rename, and removed (and written) before a file is replaced
/// or deleted. Once the store is lost (``StateStore/onLoss(_:)``), nothing more is
/// written: not state, not the lockfile.
///
/// The two files are derived from state, so failing to write them (a full disk, a folder
/// at their path) never fails a change to state: the problem is kept, the write tried
/// again later, and ``flush()`` reports it once, at the end (``DerivedFilesError``).
actor StateWriter {
    /// What a change needs to survive.
    enum Durability {
        /// Progress: lost in a crash, refreshed by the next run.
        case memory
        /// Committed before the call returns.
        case committed
    }

    private var state: State
    private var entries: [String: Lockfile.Entry]
    // Indexes that keep a download's bookkeeping independent of the number of
    // partitions: which record owns an output path, and which lockfile paths a
    // partition has.
    private var owners: [String: String] = [:]
    private var lockPaths: [PartitionKey: Set<String>] = [:]
    /// Keys changed in memory only, committed by ``flush()``.
    private var uncommitted: Set<String> = []
    let store: any StateStore
    private let layout: Layout
    private let output: any OutputStore
    private let interval: Duration
    private var lockDirty = false
    private var lockDue = ContinuousClock.now
    private let loss = FirstReason()
    /// Why the last write of `segsync.lock` and `SHA256SUMS` failed, while it stands.
    private var derivedFilesProblem: String?

    init(state: State, lockfile: Lockfile, store: any StateStore, layout: Layout, output: (any OutputStore)? = nil,
         interval: Duration = .seconds(1)) {
        self.state = state
        self.entries = [:]
        self.store = store
        self.layout = layout
        self.output = output ?? FolderOutput(layout: layout)
        self.interval = interval
        lockDue = ContinuousClock.now + interval
        for entry in lockfile.entries {
            entries[entry.path] = entry
            lockPaths[entry.key, default: []].insert(entry.path)
        }
        for (key, record) in state.partitions {
            if let path = record.output?.path { owners[path] = key }
        }
        let loss = self.loss
        store.onLoss { reason in loss.set(reason) }
    }

    /// Sets or removes a record, keeping `owners` in step.
    private func setRecord(_ key: String, _ record: PartitionRecord?) {
        if let old = state.partitions[key]?.output?.path, owners[old] == key { owners[old] = nil }
        state.partitions[key] = record
        if let path = record?.output?.path { owners[path] = key }
    }

    private func setEntry(_ entry: Lockfile.Entry) {
        if let old = entries[entry.path] { lockPaths[old.key]?.remove(entry.path) }
        entries[entry.path] = entry
        lockPaths[entry.key, default: []].insert(entry.path)
    }

    @discardableResult
    private func removeEntry(_ path: String) -> Bool {
        guard let old = entries.removeValue(forKey: path) else { return false }
        lockPaths[old.key]?.remove(path)
        return true
    }

    // Group commit: changes that arrive while a transaction is in flight wait for the
    // next one together, so 32 operation ids answered at once cost a few transactions,
    // not 32 fsyncs in a row, and the window in which a SIGKILL loses an answered id
    // stays short.
    private var queued: [StateChange] = []
    private var waiting: [CheckedContinuation<Void, any Error>] = []
    private var committing = false

    /// Commits `changes` and returns once they are durable. Commits run in a task of
    /// their own: an interrupted run still records what it learnt (an operation id above
    /// all), so cancellation must not reach the transaction.
    private func commit(_ changes: [StateChange]) async throws {
        guard !changes.isEmpty else { return }
        if let reason = loss.reason { throw SegSyncError(reason) }
        for change in changes { uncommitted.remove(change.key) }
        queued += changes
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            waiting.append(continuation)
            if !committing {
                committing = true
                Task { await self.drain() }
            }
        }
    }

    /// Commits what is queued, one transaction per batch, until nothing is.
    private func drain() async {
        while !queued.isEmpty {
            // The last change of a key wins; each key once per transaction.
            var latest: [String: StateChange] = [:]
            for change in queued { latest[change.key] = change }
            let batch = latest.values.sorted { $0.key < $1.key }
            let waiters = waiting
            queued = []
            waiting = []
            do {
                if let reason = loss.reason { throw SegSyncError(reason) }
                let store = self.store
                try await Task { try await store.commit(batch) }.value
                state.serial += 1
                for waiter in waiters { waiter.resume() }
            } catch {
                for waiter in waiters { waiter.resume(throwing: error) }
            }
        }
        committing = false
    }

    /// Changes one partition's record.
    func update(_ key: PartitionKey, _ durability: Durability, _ edit: @Sendable (inout PartitionRecord?) -> Void) async throws {
        var record = state[key]
        edit(&record)
        let name = key.description
        setRecord(name, record)
        if durability == .memory {
            uncommitted.insert(name)
        } else {
            try await commit([StateChange(name, record)])
        }
        await writeLockfileIfDue()
    }

    /// ``update(_:_:_:)``, committed, all or nothing: when the commit fails, the record in
    /// memory is put back as it was, so no later commit of the partition carries a change
    /// that was never durable (an intent for a create that then is never sent). Only the
    /// partition's own run changes its record, so nothing else moved it meanwhile.
    func commitOrRestore(_ key: PartitionKey, _ edit: @Sendable (inout PartitionRecord?) -> Void) async throws {
        let name = key.description
        let before = state[key]
        let wasUncommitted = uncommitted.contains(name)
        do {
            try await update(key, .committed, edit)
        } catch {
            setRecord(name, before)
            if wasUncommitted { uncommitted.insert(name) }
            throw error
        }
    }

    /// What state records as the partition's output now.
    /// The open create intents as of now (``Adoption``).
    func openIntents(measuredOffset: Double?) -> [Adoption.Intent] {
        Adoption.intents(in: state, measuredOffset: measuredOffset)
    }

    func output(of key: PartitionKey) -> OutputRecord? {
        state[key]?.output
    }

    /// When the partition's current operation was created, by the run's clock.
    func requestedAt(of key: PartitionKey) -> Date? {
        state[key]?.requestedAt
    }

    /// Records a file that is now in place. Returns the paths this partition recorded
    /// before under other names (its old format, say): withdrawn from the lockfile here,
    /// for the caller to delete.
    func recordOutput(_ key: PartitionKey, entry: Lockfile.Entry, output: OutputRecord, now: Date) async throws -> [String] {
        let name = key.description
        var record = state[key]
        var stale = lockPaths[key, default: []]
        stale.remove(entry.path)
        if let previous = record?.output?.path, previous != entry.path { stale.insert(previous) }
        var changes: [StateChange] = []
        // Another partition recorded at this very path (the export's time zone changed, so
        // old and new partitions share a name) is superseded: the file is this one now.
        if let other = owners[entry.path], other != name {
            setRecord(other, nil)
            changes.append(StateChange(other, nil))
        }
        // A path another partition still owns is not this partition's to delete.
        stale = stale.filter { owners[$0] == nil || owners[$0] == name }
        for path in stale { removeEntry(path) }
        record?.phase = .downloaded
        record?.output = output
        record?.lastError = nil
        record?.updatedAt = now
        setRecord(name, record)
        changes.append(StateChange(name, record))
        try await commit(changes)
        setEntry(entry)
        lockDirty = true
        if stale.isEmpty {
            await writeLockfileIfDue()
            return []
        }
        // The old files go only once the lockfile no longer lists them; if it cannot be
        // written, they stay (recorded nowhere in state, still in the lockfile on disk).
        return await tryWriteLockfile() ? stale.sorted() : []
    }

    /// Takes paths out of the lockfile, on disk, before their files are replaced or deleted.
    /// Throws when the lockfile cannot be written: the files must then stay as they are.
    func withdraw(paths: [String]) async throws {
        var removed = false
        for path in paths where removeEntry(path) { removed = true }
        if removed { try await writeLockfile() }
    }

    /// Removes a partition's record (after a prune).
    func forget(_ key: PartitionKey) async throws {
        setRecord(key.description, nil)
        try await commit([StateChange(key.description, nil)])
        await writeLockfileIfDue()
    }

    /// Commits what is only in memory and writes the lockfile if it changed; when the
    /// lockfile then says exactly what state does, records that (``LockfileMark``) so
    /// the next plan need not read it. Throws ``DerivedFilesError`` when the lockfile
    /// cannot be written, after state is committed.
    func flush() async throws {
        let pending = uncommitted.sorted().map { StateChange($0, state.partitions[$0]) }
        try await commit(pending)
        if lockDirty || derivedFilesProblem != nil {
            do {
                try await writeLockfile()
            } catch where loss.reason == nil {
                throw DerivedFilesError(lockfile: layout.lockfilePath, checksums: output.checksumsLocation, cause: error)
            }
        }
        let lockfile = Lockfile(entries: Array(entries.values))
        try await LockfileMark.record(for: lockfile, state: state, layout: layout, output: output, in: store)
    }

    private func writeLockfileIfDue() async {
        if lockDirty, ContinuousClock.now >= lockDue { await tryWriteLockfile() }
    }

    /// Writes the lockfile now; on failure keeps the problem for ``flush()`` and tries
    /// again at the next due time. True when written.
    @discardableResult
    private func tryWriteLockfile() async -> Bool {
        do {
            try await writeLockfile()
            derivedFilesProblem = nil
            return true
        } catch {
            derivedFilesProblem = "\(error)"
            lockDue = ContinuousClock.now + interval
            return false
        }
    }

    /// Set while a rewrite is under way; later ones wait their turn in order.
    private var rewriting = false
    private var rewriteWaiters: [CheckedContinuation<Void, Never>] = []

    /// Rewrites the lockfile and `SHA256SUMS`. Rewrites back off as they grow: the next
    /// one waits at least ten times as long as this one took.
    ///
    /// One at a time, each from the entries as they are when its turn comes: the actor
    /// is free while `SHA256SUMS` is written (a bucket's takes a request), and an older
    /// list written after a newer one would list a withdrawn file again.
    private func writeLockfile() async throws {
        while rewriting { await withCheckedContinuation { rewriteWaiters.append($0) } }
        rewriting = true
        defer {
            rewriting = false
            if !rewriteWaiters.isEmpty { rewriteWaiters.removeFirst().resume() }
        }
        if let reason = loss.reason { throw SegSyncError(reason) }
        let started = ContinuousClock.now
        let lockfile = Lockfile(entries: Array(entries.values))
        // Clean as of this list: a change made while it is written (the actor is free
        // during the write) sets it again, so the end of the run writes that one too.
        lockDirty = false
        do {
            try await lockfile.write(to: layout, output: output)
        } catch {
            lockDirty = true
            throw error
        }
        let took = ContinuousClock.now - started
        lockDue = ContinuousClock.now + max(interval, took * 10)
    }
}

/// `segsync.lock` and `SHA256SUMS` could not be written at the end of an apply. State
/// holds everything the run did; the next run writes both files again.
public struct DerivedFilesError: Error, Sendable, CustomStringConvertible {
    public var lockfile: String
    public var checksums: String
    public var cause: String

    init(lockfile: String, checksums: String, cause: any Error) {
        self.lockfile = lockfile
        self.checksums = checksums
        self.cause = "\(cause)"
    }

    public var description: String {
        "Could not write \(lockfile) and \(checksums): \(cause) State records every export and file of this run; "
            + "fix the problem and run apply again to write both files."
    }
}
