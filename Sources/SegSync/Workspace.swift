import Foundation

/// One manifest and everything that belongs to it, opened for a run: its layout on
/// disk and its ``StateStore``, whose run lock the opener took.
///
/// Everything read through a workspace is consistent until ``close()`` releases it.
public struct Workspace: Sendable {
    public let manifest: Manifest
    public let layout: Layout
    public let store: any StateStore
    /// Things worth telling the user about opening it (an import of earlier state).
    public var notes: [String] = []

    public init(manifest: Manifest, layout: Layout, store: any StateStore) {
        self.manifest = manifest
        self.layout = layout
        self.store = store
    }

    /// Releases the run lock and the store's connection.
    public func close() async {
        await store.close()
    }

    /// Runs `body`, then closes the workspace, also when `body` throws.
    public func closing<T>(_ body: (Workspace) async throws -> T) async throws -> T {
        do {
            let result = try await body(self)
            await close()
            return result
        } catch {
            await close()
            throw error
        }
    }

    /// What the planner needs, read from the store and the disk.
    public struct Snapshot: Sendable {
        public var state: State
        public var lockfile: Lockfile
        public var observed: ObservedFiles
        /// The lockfile came from state, the files being as segsync last wrote them
        /// (``LockfileMark``), so neither was read.
        public var lockfileFromState = false
    }

    public func snapshot(depth: ObservedFiles.Depth = .quick) async throws -> Snapshot {
        let state = try await store.load()
        // --checksum trusts nothing it has not read.
        var lockfile = depth == .full ? nil : try await LockfileMark.lockfile(for: state, layout: layout, in: store)
        let fromState = lockfile != nil
        if lockfile == nil { lockfile = try Lockfile.load(path: layout.lockfilePath) }
        let observed = ObservedFiles.scan(
            directory: layout.outputDirectory,
            expected: Planner.expectedFiles(state: state, lockfile: lockfile!),
            depth: depth)
        return Snapshot(state: state, lockfile: lockfile!, observed: observed, lockfileFromState: fromState)
    }

    /// Makes `segsync.lock` and `SHA256SUMS` list every intact output state records (a
    /// lockfile deleted, or left behind by a run killed between two writes, is rebuilt).
    /// Returns the lockfile as it now stands.
    @discardableResult
    public func reconcileLockfile(_ snapshot: Snapshot) async throws -> Lockfile {
        var byPath = Dictionary(snapshot.lockfile.entries.map { ($0.path, $0) }, uniquingKeysWith: { _, last in last })
        for entry in Lockfile.derived(from: snapshot.state).entries where snapshot.observed.problems[entry.path] == nil {
            byPath[entry.path] = entry
        }
        let lockfile = Lockfile(entries: Array(byPath.values))
        // Vouched for by the mark: both files are as segsync wrote them.
        if snapshot.lockfileFromState, lockfile == snapshot.lockfile { return lockfile }
        let sums = Checksums.render(lockfile.entries)
        let sumsOnDisk = try? String(contentsOfFile: layout.checksumsPath, encoding: .utf8)
        if lockfile != snapshot.lockfile || (!lockfile.entries.isEmpty && sumsOnDisk != sums) {
            try lockfile.write(to: layout)
        }
        try await LockfileMark.record(for: lockfile, state: snapshot.state, layout: layout, in: store)
        return lockfile
    }

    /// The part of a plan that needs no API: re-adopts outputs the lockfile vouches for,
    /// drops records nothing wants, removes leftovers of interrupted writes, and brings
    /// the lockfile up to date with state. Updates `snapshot` to match.
    public func tidy(_ plan: Plan, _ snapshot: inout Snapshot, now: Date) async throws {
        for partial in snapshot.observed.partialFiles {
            if let path = try? layout.absolutePath(ofOutput: partial) { unlink(path) }
        }
        var state = snapshot.state
        for entry in plan.adoptions {
            guard let export = manifest.export(named: entry.export) else { continue }
            let calendar = PartitionCalendar(cadence: export.window.cadence, timeZone: export.timeZone)
            let partition = Partition(export: entry.export, start: entry.start, end: entry.end,
                                      label: DesiredPartitions.label(start: entry.start, calendar: calendar),
                                      fingerprint: entry.fingerprint)
            var record = PartitionRecord(partition: partition, parameters: ExportParameters(export, in: manifest), phase: .downloaded, now: now)
            record.output = OutputRecord(path: entry.path, bytes: entry.bytes, sha256: entry.sha256,
                                         modified: ObservedFiles.modificationTime(ofFileAt: layout.outputDirectory + "/" + entry.path))
            state[partition.key] = record
        }
        for key in plan.forget { state[key] = nil }
        let changes = StateChange.between(snapshot.state, state)
        if !changes.isEmpty {
            try await store.commit(changes)
            state.serial += 1
            snapshot.state = state
        }
        snapshot.lockfile = try await reconcileLockfile(snapshot)
    }

    public func plan(_ snapshot: Snapshot, now: Date, options: Planner.Options) throws -> Plan {
        try Planner.plan(manifest: manifest, state: snapshot.state, lockfile: snapshot.lockfile,
                         observed: snapshot.observed, now: now, options: options)
    }
}
