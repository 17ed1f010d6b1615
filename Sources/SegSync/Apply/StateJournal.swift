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
    private let store: StateStore
    private let layout: Layout
    private let interval: Duration
    private var stateDirty = false
    private var lockDirty = false
    private var stateDue = ContinuousClock.now
    private var lockDue = ContinuousClock.now

    init(state: State, lockfile: Lockfile, store: StateStore, layout: Layout, interval: Duration = .seconds(1)) {
        self.state = state
        self.entries = Dictionary(lockfile.entries.map { ($0.path, $0) }, uniquingKeysWith: { _, last in last })
        self.store = store
        self.layout = layout
        self.interval = interval
        stateDue = ContinuousClock.now + interval
        lockDue = ContinuousClock.now + interval
    }

    /// Changes one partition's record.
    func update(_ key: PartitionKey, _ durability: Durability, _ edit: @Sendable (inout PartitionRecord?) -> Void) throws {
        var record = state[key]
        edit(&record)
        state[key] = record
        stateDirty = true
        if durability != .memory {
            try store.append([(key.description, record)], sync: durability == .synced)
        }
        try flushIfDue()
    }

    /// Records a file that is now in place. Returns the paths this partition recorded
    /// before under other names (its old format, say): withdrawn from the lockfile here,
    /// for the caller to delete.
    func recordOutput(_ key: PartitionKey, entry: Lockfile.Entry, output: OutputRecord, now: Date) throws -> [String] {
        var record = state[key]
        var stale = Set(entries.values.filter { $0.key == key && $0.path != entry.path }.map(\.path))
        if let previous = record?.output?.path, previous != entry.path { stale.insert(previous) }
        var changes: [(key: String, record: PartitionRecord?)] = []
        // Another partition recorded at this very path (the export's time zone changed, so
        // old and new partitions share a name) is superseded: the file is this one now.
        for (other, otherRecord) in state.partitions where other != key.description && otherRecord.output?.path == entry.path {
            state.partitions[other] = nil
            changes.append((other, nil))
        }
        let claimed = Set(state.partitions.filter { $0.key != key.description }.values.compactMap { $0.output?.path })
        stale.subtract(claimed)
        for path in stale { entries[path] = nil }
        record?.phase = .downloaded
        record?.output = output
        record?.lastError = nil
        record?.updatedAt = now
        state[key] = record
        changes.append((key.description, record))
        try store.append(changes, sync: false)
        entries[entry.path] = entry
        stateDirty = true
        lockDirty = true
        if stale.isEmpty { try flushIfDue() } else { try writeLockfile() }
        return stale.sorted()
    }

    /// Takes paths out of the lockfile, on disk, before their files are replaced or deleted.
    func withdraw(paths: [String]) throws {
        var removed = false
        for path in paths where entries.removeValue(forKey: path) != nil { removed = true }
        if removed { try writeLockfile() }
    }

    /// Removes a partition's record (after a prune).
    func forget(_ key: PartitionKey) throws {
        state[key] = nil
        stateDirty = true
        try store.append([(key.description, nil)], sync: false)
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
