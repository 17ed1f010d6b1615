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

    /// Loads the manifest at `manifestPath` and takes `.segsync/lock` for `command`.
    public static func open(manifestPath: String, command: String, now: Date = Date()) throws -> Workspace {
        let manifest = try ManifestLoader.load(path: manifestPath)
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

    public func plan(_ snapshot: Snapshot, now: Date, options: Planner.Options) throws -> Plan {
        try Planner.plan(manifest: manifest, state: snapshot.state, lockfile: snapshot.lockfile,
                         observed: snapshot.observed, now: now, options: options)
    }
}
