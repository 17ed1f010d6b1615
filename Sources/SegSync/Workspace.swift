import Foundation

/// One manifest and everything on disk that belongs to it, opened for a run.
///
/// Opening takes the run lock, so everything read through a workspace is consistent
/// until it is released.
public struct Workspace: Sendable {
    public let manifest: Manifest
    public let layout: Layout
    public let lock: RunLock
    public let stateStore: StateStore

    /// Loads the manifest at `manifestPath` and takes `.segsync/lock` for `command`. The
    /// manifest's endpoint is the one `environment` makes effective
    /// (``Manifest/resolvingEndpoint(environment:)``).
    public static func open(manifestPath: String, command: String, now: Date = Date(),
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Workspace {
        let manifest = try ManifestLoader.load(path: manifestPath).resolvingEndpoint(environment: environment)
        let layout = Layout(manifestPath: manifestPath, output: manifest.output)
        try AtomicFile.makeDirectory(layout.stateDirectory)
        let lock = try RunLock(path: layout.lockPath, command: command, now: now)
        return Workspace(manifest: manifest, layout: layout, lock: lock, stateStore: StateStore(path: layout.statePath))
    }

    /// What the planner needs, read from disk.
    public struct Snapshot: Sendable {
        public var state: State
        public var lockfile: Lockfile
        public var observed: ObservedFiles
    }

    public func snapshot(depth: ObservedFiles.Depth = .quick) throws -> Snapshot {
        let state = try stateStore.load()
        let lockfile = try Lockfile.load(path: layout.lockfilePath)
        let observed = ObservedFiles.scan(
            directory: layout.outputDirectory,
            expected: Planner.expectedFiles(state: state, lockfile: lockfile),
            depth: depth)
        return Snapshot(state: state, lockfile: lockfile, observed: observed)
    }

    /// Makes `segsync.lock` and `SHA256SUMS` list every intact output state records (a
    /// lockfile deleted, or left behind by a run killed between two writes, is rebuilt).
    /// Returns the lockfile as it now stands.
    @discardableResult
    public func reconcileLockfile(_ snapshot: Snapshot) throws -> Lockfile {
        var byPath = Dictionary(snapshot.lockfile.entries.map { ($0.path, $0) }, uniquingKeysWith: { _, last in last })
        for record in snapshot.state.partitions.values where record.phase == .downloaded {
            guard let output = record.output, snapshot.observed.problems[output.path] == nil else { continue }
            byPath[output.path] = Lockfile.Entry(
                path: output.path, sha256: output.sha256, bytes: output.bytes, export: record.export,
                segment: record.parameters.segment, type: record.parameters.type, format: record.parameters.format,
                start: record.start, end: record.end, fingerprint: record.fingerprint, source: record.parameters.endpoint)
        }
        let lockfile = Lockfile(entries: Array(byPath.values))
        let sums = Checksums.render(lockfile.entries)
        let sumsOnDisk = try? String(contentsOfFile: layout.checksumsPath, encoding: .utf8)
        if lockfile != snapshot.lockfile || (!lockfile.entries.isEmpty && sumsOnDisk != sums) {
            try AtomicFile.makeDirectory(layout.outputDirectory)
            try AtomicFile.write(Data(sums.utf8), to: layout.checksumsPath, newFileMode: 0o644)
            try lockfile.write(to: layout.lockfilePath)
        }
        return lockfile
    }

    /// The part of a plan that needs no API: re-adopts outputs the lockfile vouches for,
    /// drops records nothing wants, removes leftovers of interrupted writes, and brings
    /// the lockfile up to date with state. Updates `snapshot` to match.
    public func tidy(_ plan: Plan, _ snapshot: inout Snapshot, now: Date) throws {
        for partial in snapshot.observed.partialFiles {
            if let path = try? layout.absolutePath(ofOutput: partial) { unlink(path) }
        }
        var state = snapshot.state
        for entry in plan.adoptions {
            guard let export = manifest.export(named: entry.export) else { continue }
            let calendar = PartitionCalendar(cadence: export.window.cadence, timeZone: export.timeZone)
            let partition = Partition(export: entry.export, start: entry.start, end: entry.end,
                                      label: DesiredPartitions.label(start: entry.start, cadence: export.window.cadence, calendar: calendar.calendar),
                                      fingerprint: entry.fingerprint)
            var record = PartitionRecord(partition: partition, parameters: ExportParameters(export, in: manifest), phase: .downloaded, now: now)
            record.output = OutputRecord(path: entry.path, bytes: entry.bytes, sha256: entry.sha256,
                                         modified: ObservedFiles.modificationTime(ofFileAt: layout.outputDirectory + "/" + entry.path))
            state[partition.key] = record
        }
        for key in plan.forget { state[key] = nil }
        if state != snapshot.state || stateStore.hasJournal {
            try stateStore.save(&state)
            snapshot.state = state
        }
        snapshot.lockfile = try reconcileLockfile(snapshot)
    }

    public func plan(_ snapshot: Snapshot, now: Date, options: Planner.Options) throws -> Plan {
        try Planner.plan(manifest: manifest, state: snapshot.state, lockfile: snapshot.lockfile,
                         observed: snapshot.observed, now: now, options: options)
    }
}
