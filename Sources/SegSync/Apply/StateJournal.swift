import Foundation

/// The one writer of state, lockfile and `SHA256SUMS` during an apply.
///
/// Every change lands in memory at once. What must survive a crash goes to the state
/// journal as it happens: operation ids and failures with an fsync before the call
/// returns, finished files as a plain append. Progress of running operations stays in
/// memory. The whole state file, the lockfile and `SHA256SUMS` are rewritten only now
/// and then — at most every `interval`, and less often as they grow — and at the end.
///
/// The lockfile and `SHA256SUMS` only ever list files that are fully in place: entries
/// are added after a file's rename, and removed (and written) before a file is replaced
/// or deleted.
actor StateJournal {
    /// What a change needs to survive.
    enum Durability {
        /// Progress: lost in a crash, refreshed by the next run.
        case memory
        /// Survives the process dying (kept in the journal, not fsynced).
        case journal
        /// Survives a power cut: fsynced before the call returns.
        case synced
    }

    private var state: State
    private var entries: [String: Lockfile.Entry]
    // Indexes that keep a download's bookkeeping independent of the number of
    // partitions: which record owns an output path, and which lockfile paths a
    // partition has.
    private var owners: [String: String] = [:]
    private var lockPaths: [PartitionKey: Set<String>] = [:]
    private let store: StateStore
    private let layout: Layout
    private let interval: Duration
    private var stateDirty = false
    private var lockDirty = false
    private var stateDue = ContinuousClock.now
    private var lockDue = ContinuousClock.now

    init(state: State, lockfile: Lockfile, store: StateStore, layout: Layout, interval: Duration = .seconds(1)) {
        self.state = state
        self.entries = [:]
        self.store = store
        self.layout = layout
        self.interval = interval
        stateDue = ContinuousClock.now + interval
        lockDue = ContinuousClock.now + interval
        for entry in lockfile.entries {
            entries[entry.path] = entry
            lockPaths[entry.key, default: []].insert(entry.path)
        }
        for (key, record) in state.partitions {
            if let path = record.output?.path { owners[path] = key }
        }
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

    /// Changes one partition's record.
    func update(_ key: PartitionKey, _ durability: Durability, _ edit: @Sendable (inout PartitionRecord?) -> Void) throws {
        var record = state[key]
        edit(&record)
        setRecord(key.description, record)
        stateDirty = true
        if durability != .memory {
            try store.append([(key.description, record)], epoch: state.journalEpoch, sync: durability == .synced)
        }
        try flushIfDue()
    }

    /// Records a file that is now in place. Returns the paths this partition recorded
    /// before under other names (its old format, say): withdrawn from the lockfile here,
    /// for the caller to delete.
    func recordOutput(_ key: PartitionKey, entry: Lockfile.Entry, output: OutputRecord, now: Date) throws -> [String] {
        let name = key.description
        var record = state[key]
        var stale = lockPaths[key, default: []]
        stale.remove(entry.path)
        if let previous = record?.output?.path, previous != entry.path { stale.insert(previous) }
        var changes: [(key: String, record: PartitionRecord?)] = []
        // Another partition recorded at this very path (the export's time zone changed, so
        // old and new partitions share a name) is superseded: the file is this one now.
        if let other = owners[entry.path], other != name {
            setRecord(other, nil)
            changes.append((other, nil))
        }
        // A path another partition still owns is not this partition's to delete.
        stale = stale.filter { owners[$0] == nil || owners[$0] == name }
        for path in stale { removeEntry(path) }
        record?.phase = .downloaded
        record?.output = output
        record?.lastError = nil
        record?.updatedAt = now
        setRecord(name, record)
        changes.append((name, record))
        try store.append(changes, epoch: state.journalEpoch, sync: false)
        setEntry(entry)
        stateDirty = true
        lockDirty = true
        if stale.isEmpty { try flushIfDue() } else { try writeLockfile() }
        return stale.sorted()
    }

    /// Takes paths out of the lockfile, on disk, before their files are replaced or deleted.
    func withdraw(paths: [String]) throws {
        var removed = false
        for path in paths where removeEntry(path) { removed = true }
        if removed { try writeLockfile() }
    }

    /// Removes a partition's record (after a prune).
    func forget(_ key: PartitionKey) throws {
        setRecord(key.description, nil)
        stateDirty = true
        try store.append([(key.description, nil)], epoch: state.journalEpoch, sync: false)
        try flushIfDue()
    }

    /// Rewrites whatever is due. Rewrites back off as files grow: the next one waits at
    /// least ten times as long as this one took.
    func flushIfDue() throws {
        let now = ContinuousClock.now
        if stateDirty, now >= stateDue { try writeState() }
        if lockDirty, now >= lockDue { try writeLockfile() }
    }

    /// Writes everything that changed.
    func flush() throws {
        if stateDirty || store.hasJournal { try writeState() }
        if lockDirty { try writeLockfile() }
    }

    private func writeState() throws {
        let started = ContinuousClock.now
        try store.save(&state)
        stateDirty = false
        let took = ContinuousClock.now - started
        stateDue = ContinuousClock.now + max(interval, took * 10)
    }

    private func writeLockfile() throws {
        let started = ContinuousClock.now
        let lockfile = Lockfile(entries: Array(entries.values))
        try AtomicFile.makeDirectory(layout.outputDirectory)
        try AtomicFile.write(Data(Checksums.render(lockfile.entries).utf8), to: layout.checksumsPath, newFileMode: 0o644)
        try lockfile.write(to: layout.lockfilePath)
        lockDirty = false
        let took = ContinuousClock.now - started
        lockDue = ContinuousClock.now + max(interval, took * 10)
    }
}
