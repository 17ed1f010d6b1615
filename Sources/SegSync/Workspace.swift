import Foundation

/// One manifest and everything that belongs to it, opened for a run: its layout on
/// disk and its ``StateStore``, whose run lock the opener took.
///
/// Everything read through a workspace is consistent until ``close()`` releases it.
public struct Workspace: Sendable {
    public let manifest: Manifest
    public let layout: Layout
    public let store: any StateStore
    /// Where its outputs live: the folder, or a bucket.
    public let output: any OutputStore
    /// Things worth telling the user about opening it (an import of earlier state).
    public var notes: [Diagnostic] = []

    /// `output` defaults to the layout's folder.
    public init(manifest: Manifest, layout: Layout, store: any StateStore, output: (any OutputStore)? = nil) {
        self.manifest = manifest
        self.layout = layout
        self.store = store
        self.output = output ?? FolderOutput(layout: layout)
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
        public var observed: ObservedFiles
        /// Where ``lockfile`` comes from. While ``LockfileMark`` vouches that both files are
        /// as segsync last wrote them from this state, neither is read, and the lockfile is
        /// derived from the state only when something asks for it.
        private var source: LockfileSource

        enum LockfileSource: Sendable {
            case read(Lockfile)
            /// ``Lockfile/derived(from:)`` this state (state as loaded, before any change).
            case derived(State)
        }

        public init(state: State, lockfile: Lockfile, observed: ObservedFiles) {
            self.init(state: state, source: .read(lockfile), observed: observed)
        }

        init(state: State, source: LockfileSource, observed: ObservedFiles) {
            self.state = state
            self.source = source
            self.observed = observed
        }

        /// The lockfile as it stands on disk.
        public var lockfile: Lockfile {
            get {
                switch source {
                case .read(let lockfile): lockfile
                case .derived(let state): .derived(from: state)
                }
            }
            set { source = .read(newValue) }
        }

        /// The lockfile came from state, the files being as segsync last wrote them
        /// (``LockfileMark``), so neither was read.
        public var lockfileFromState: Bool {
            if case .derived = source { true } else { false }
        }

        /// What the planner needs of the lockfile: its entries that state does not
        /// already say. A lockfile derived from state adds nothing, so it is never built.
        var lockfileForPlanning: Lockfile {
            switch source {
            case .read(let lockfile): lockfile
            case .derived: Lockfile(entries: [])
            }
        }

        /// True when the lockfile is derived from exactly `state`: nothing since changed it.
        func lockfileIsDerived(from state: State) -> Bool {
            if case .derived(let marked) = source { marked.partitions == state.partitions } else { false }
        }
    }

    /// State, the lockfile (read only when its mark cannot vouch for it) and the outputs
    /// as they are now: what a plan is computed from. `.full` hashes every output.
    public func snapshot(depth: ObservedFiles.Depth = .quick) async throws -> Snapshot {
        // Listed after state loads, on this thread: listing beside the load saved about
        // a tenth of a second on 36,500 files, but a second malloc arena made the plan's
        // peak memory vary by 30 MB from run to run.
        let state = try await store.load()
        // --checksum trusts nothing it has not read.
        let vouched = depth == .quick ? try await LockfileMark.vouches(for: state, layout: layout, output: output, in: store) : false
        let source: Snapshot.LockfileSource = vouched ? .derived(state) : .read(try Lockfile.load(path: layout.lockfilePath))
        var snapshot = Snapshot(state: state, source: source, observed: ObservedFiles())
        snapshot.observed = try await output.observe(
            expected: Planner.expectedFiles(state: state, lockfile: snapshot.lockfileForPlanning), depth: depth)
        return snapshot
    }

    /// Makes `segsync.lock` and `SHA256SUMS` list every intact output state records (a
    /// lockfile deleted, or left behind by a run killed between two writes, is rebuilt).
    /// Updates the snapshot's lockfile to the lockfile as it now stands.
    public func reconcileLockfile(_ snapshot: inout Snapshot) async throws {
        // Vouched for by the mark, and state has not changed since: both files are as
        // segsync wrote them, and nothing needs building.
        if snapshot.lockfileIsDerived(from: snapshot.state) { return }
        var byPath = Dictionary(snapshot.lockfile.entries.map { ($0.path, $0) }, uniquingKeysWith: { _, last in last })
        for entry in Lockfile.derived(from: snapshot.state).entries where snapshot.observed.problems[entry.path] == nil {
            byPath[entry.path] = entry
        }
        let lockfile = Lockfile(entries: Array(byPath.values))
        // The files still say what state does (a change to state that no output shows,
        // such as a forgotten record): only the mark moves on to the new serial.
        if snapshot.lockfileFromState, lockfile == snapshot.lockfile {
            try await LockfileMark.record(for: lockfile, state: snapshot.state, layout: layout, output: output, in: store)
            snapshot.lockfile = lockfile
            return
        }
        let sums = Checksums.render(lockfile.entries)
        let sumsNow = try? await output.readChecksums()
        if lockfile != snapshot.lockfile || (!lockfile.entries.isEmpty && sumsNow != sums) {
            try await lockfile.write(to: layout, output: output)
        }
        try await LockfileMark.record(for: lockfile, state: snapshot.state, layout: layout, output: output, in: store)
        snapshot.lockfile = lockfile
    }

    /// The part of a plan that needs no API: re-adopts outputs the lockfile vouches for,
    /// drops records nothing wants, removes leftovers of interrupted writes, and brings
    /// the lockfile up to date with state. Updates `snapshot` to match.
    public func tidy(_ plan: Plan, _ snapshot: inout Snapshot, now: Date) async throws {
        await output.removeLeftovers(snapshot.observed)
        if !plan.adoptions.isEmpty || !plan.forget.isEmpty || !snapshot.observed.restamped.isEmpty {
            try await adopt(plan, &snapshot, now: now)
        }
        try await reconcileLockfile(&snapshot)
    }

    /// Records the outputs the lockfile vouches for and drops the records nothing wants.
    private func adopt(_ plan: Plan, _ snapshot: inout Snapshot, now: Date) async throws {
        var state = snapshot.state
        for entry in plan.adoptions {
            guard let export = manifest.export(named: entry.export) else { continue }
            let calendar = PartitionCalendar(cadence: export.window.cadence, timeZone: export.timeZone)
            let partition = Partition(export: entry.export, start: entry.start, end: entry.end,
                                      label: DesiredPartitions.label(start: entry.start, calendar: calendar),
                                      fingerprint: entry.fingerprint)
            var record = PartitionRecord(partition: partition, parameters: ExportParameters(export, in: manifest), phase: .downloaded, now: now)
            // An ETag the listing just vouched for is the object's stamp: no request per object.
            let vouched = entry.etag != nil && snapshot.observed.problems[entry.path] == nil && snapshot.observed.restamped[entry.path] == nil
            let stamp = vouched ? OutputStamp(identity: entry.etag) : await output.stamp(entry.path)
            record.output = OutputRecord(path: entry.path, bytes: entry.bytes, sha256: entry.sha256,
                                         modified: stamp.modified, identity: stamp.identity,
                                         exportedAt: entry.provisional?.exported, contentSHA256: entry.provisional?.contentSHA256)
            state[partition.key] = record
        }
        for key in plan.forget { state[key] = nil }
        // Outputs read and found intact under another stamp (a touched file; an object
        // recorded before its ETag was): their records take the stamp they have now.
        if !snapshot.observed.restamped.isEmpty {
            for (key, record) in state.partitions {
                guard let output = record.output, let stamp = snapshot.observed.restamped[output.path] else { continue }
                var restamped = record
                restamped.output?.modified = stamp.modified
                restamped.output?.identity = stamp.identity
                state.partitions[key] = restamped
            }
        }
        let changes = StateChange.between(snapshot.state, state)
        if !changes.isEmpty {
            try await store.commit(changes)
            state.serial += 1
            snapshot.state = state
        }
    }

    /// ``Planner/plan(manifest:state:lockfile:observed:now:options:)`` over `snapshot`.
    public func plan(_ snapshot: Snapshot, now: Date, options: Planner.Options) throws -> Plan {
        try Planner.plan(manifest: manifest, state: snapshot.state, lockfile: snapshot.lockfileForPlanning,
                         observed: snapshot.observed, now: now, options: options)
    }
}
