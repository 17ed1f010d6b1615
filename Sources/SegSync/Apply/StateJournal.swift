import Foundation

/// The one writer of state, lockfile and `SHA256SUMS` during an apply.
///
/// Writes are coalesced: ordinary updates mark the journal dirty and are written at
/// most once per `interval`; a durable update (a new operation id, a lockfile entry
/// leaving) is written before the call returns. The lockfile and `SHA256SUMS` only ever
/// list files that are fully in place: entries are added after a file's rename and
/// removed (and written) before a file is replaced or deleted.
actor StateJournal {
    private var state: State
    private var entries: [String: Lockfile.Entry]
    private let store: StateStore
    private let layout: Layout
    private let interval: Duration
    private var stateDirty = false
    private var lockDirty = false
    private var lastFlush = ContinuousClock.now
    private(set) var writes = 0

    init(state: State, lockfile: Lockfile, store: StateStore, layout: Layout, interval: Duration = .seconds(1)) {
        self.state = state
        self.entries = Dictionary(lockfile.entries.map { ($0.path, $0) }, uniquingKeysWith: { _, last in last })
        self.store = store
        self.layout = layout
        self.interval = interval
    }

    var snapshot: State { state }

    func record(_ key: PartitionKey) -> PartitionRecord? { state[key] }

    /// Changes one partition's record; `durable` writes it before returning.
    func update(_ key: PartitionKey, durable: Bool = false, _ edit: @Sendable (inout PartitionRecord?) -> Void) throws {
        var record = state[key]
        edit(&record)
        state[key] = record
        stateDirty = true
        try durable ? flush() : flushIfDue()
    }

    /// Records a file that is now in place. Returns the paths this partition recorded
    /// before under other names (its old format, say): withdrawn from the lockfile here,
    /// for the caller to delete.
    func recordOutput(_ key: PartitionKey, entry: Lockfile.Entry, output: OutputRecord, now: Date) throws -> [String] {
        var record = state[key]
        var stale = Set(entries.values.filter { $0.key == key && $0.path != entry.path }.map(\.path))
        if let previous = record?.output?.path, previous != entry.path { stale.insert(previous) }
        // Another partition recorded at this very path (the export's time zone changed, so
        // old and new partitions share a name) is superseded: the file is this one now.
        for (other, otherRecord) in state.partitions where other != key.description && otherRecord.output?.path == entry.path {
            state.partitions[other] = nil
        }
        let claimed = Set(state.partitions.filter { $0.key != key.description }.values.compactMap { $0.output?.path })
        stale.subtract(claimed)
        for path in stale { entries[path] = nil }
        record?.phase = .downloaded
        record?.output = output
        record?.lastError = nil
        record?.updatedAt = now
        state[key] = record
        entries[entry.path] = entry
        stateDirty = true
        lockDirty = true
        if stale.isEmpty { try flushIfDue() } else { try flush() }
        return stale.sorted()
    }

    /// Takes a path out of the lockfile, on disk, before its file is replaced or deleted.
    func withdraw(path: String) throws {
        guard entries.removeValue(forKey: path) != nil else { return }
        lockDirty = true
        try flush()
    }

    /// Removes a partition's record (after a prune).
    func forget(_ key: PartitionKey) throws {
        state[key] = nil
        stateDirty = true
        try flushIfDue()
    }

    /// Re-adopts lockfile entries whose files are intact into state.
    func adopt(_ adopted: [Lockfile.Entry], manifest: Manifest, now: Date) throws {
        for entry in adopted {
            guard let export = manifest.export(named: entry.export) else { continue }
            let partition = Partition(export: entry.export, start: entry.start, end: entry.end,
                                      label: DesiredPartitions.label(start: entry.start, cadence: export.window.cadence,
                                                                     calendar: PartitionCalendar(cadence: export.window.cadence, timeZone: export.timeZone).calendar),
                                      fingerprint: entry.fingerprint)
            var record = PartitionRecord(partition: partition, parameters: ExportParameters(export, in: manifest), phase: .downloaded, now: now)
            record.output = OutputRecord(path: entry.path, bytes: entry.bytes, sha256: entry.sha256,
                                         modified: ObservedFiles.modificationTime(ofFileAt: layout.outputDirectory + "/" + entry.path))
            state[partition.key] = record
            stateDirty = true
        }
        try flush()
    }

    func flushIfDue() throws {
        if ContinuousClock.now - lastFlush >= interval { try flush() }
    }

    /// Writes whatever changed.
    func flush() throws {
        if stateDirty {
            try store.save(&state)
            stateDirty = false
            writes += 1
        }
        if lockDirty {
            let lockfile = Lockfile(entries: Array(entries.values))
            try AtomicFile.makeDirectory(layout.outputDirectory)
            try AtomicFile.write(Data(Checksums.render(lockfile.entries).utf8), to: layout.checksumsPath, newFileMode: 0o644)
            try lockfile.write(to: layout.lockfilePath)
            lockDirty = false
        }
        lastFlush = ContinuousClock.now
    }
}
