import Foundation

/// Opens the state store a manifest's `state` block names (`readOnly`: create and migrate
/// nothing). The engines live outside the core (`SegSyncStorage`); commands get the real
/// one from their context, tests may give an in-memory or faulty one.
public typealias StoreOpener = @Sendable (_ manifest: Manifest, _ layout: Layout, _ environment: [String: String],
                                          _ readOnly: Bool) async throws -> any StateStore

/// Opens the output store a manifest's `output` names: the folder by default; a bucket
/// needs the real opener (`SegSyncStorage.OutputBackend`), outside the core.
public typealias OutputOpener = @Sendable (_ manifest: Manifest, _ layout: Layout, _ environment: [String: String]) async throws -> any OutputStore

extension Workspace {
    /// The folder, or a clear error for a bucket: the core alone cannot reach one.
    public static let folderOnly: OutputOpener = { manifest, layout, _ in
        if let bucket = manifest.bucket { throw SegSyncError("this build cannot write to \(bucket.url): no object-store output was given.") }
        return FolderOutput(layout: layout)
    }

    /// Loads the manifest at `manifestPath`, opens its state store and takes the run lock
    /// for `command`, waiting up to `lockTimeout` for another run. The manifest's
    /// endpoint is the one `environment` makes effective
    /// (``Manifest/resolvingEndpoint(environment:)``). State an earlier build left in
    /// `.segsync/state.json` is imported first (``LegacyImport``).
    /// A relative `manifestPath` is below `directory` (the process's working directory when nil).
    public static func open(manifestPath: String, in directory: String? = nil, command: String, lockTimeout: Duration = .zero,
                            now: Date = Date(), environment: [String: String], openStore: StoreOpener,
                            openOutput: OutputOpener = folderOnly,
                            waiting: @escaping @Sendable (Diagnostic) -> Void = { _ in }) async throws -> Workspace {
        let manifest = try ManifestLoader.load(path: manifestPath, in: directory).resolvingEndpoint(environment: environment)
        let layout = Layout(manifestPath: manifestPath, output: manifest.output, workingDirectory: directory)
        let output = try await openOutput(manifest, layout, environment)
        let store = try await openStore(manifest, layout, environment, false)
        do {
            let name = store.name
            try await store.lock(.current(command: command, now: now), timeout: lockTimeout) { holder in
                waiting(lockWaitingNote(name, holder: holder, timeout: lockTimeout))
            }
            var workspace = Workspace(manifest: manifest, layout: layout, store: store, output: output)
            workspace.notes = try await LegacyImport.run(layout: layout, into: store)
            return workspace
        } catch {
            await store.close()
            throw error
        }
    }
}

/// The one-time move of an earlier build's `.segsync/state.json` (and its journal) into
/// the store: imported when the store has no state yet, then renamed aside to
/// `state.json.imported` so it is never read again.
public enum LegacyImport {
    /// Imports `.segsync/state.json` (with its journal) when the store is empty, renames
    /// it aside either way, and returns the notes to show.
    public static func run(layout: Layout, into store: any StateStore) async throws -> [Diagnostic] {
        let path = layout.legacyStatePath
        guard LegacyStateFile.exists(path: path) else { return [] }
        let legacy = try LegacyStateFile.loadWithJournal(path: path)
        // Only the journal, when a build was killed before its first snapshot.
        let shown = FileManager.default.fileExists(atPath: path) ? path : LegacyStateFile.journalPath(for: path)
        let kept = (shown as NSString).lastPathComponent + ".imported"
        let current = try await store.load()
        var notes: [Diagnostic] = []
        if current.lineage.isEmpty, current.partitions.isEmpty {
            try await store.replace(with: legacy)
            notes.append(Diagnostic(.note, "imported \(legacy.partitions.count) partition\(legacy.partitions.count == 1 ? "" : "s") from \(layout.displayPath(shown)) into \(store.name); the old file is kept as \(kept)."))
        } else {
            notes.append(Diagnostic(.note, "\(store.name) already has state, so \(layout.displayPath(shown)) was not imported; it is kept as \(kept)."))
        }
        for file in [path, LegacyStateFile.journalPath(for: path)] where FileManager.default.fileExists(atPath: file) {
            guard rename(file, file + ".imported") == 0 else {
                throw SegSyncError("cannot rename \(file) aside after importing it: \(String(cString: strerror(errno))).")
            }
        }
        return notes
    }
}

extension Workspace {
    /// What a read-only command sees: the manifest, where things are, the state, and the
    /// notes to show (no state yet).
    public struct Reading {
        public var manifest: Manifest
        public var layout: Layout
        public var state: State
        public var notes: [Diagnostic]
    }

    /// The state of the manifest at `manifestPath`, read without the run lock and without
    /// writing (for `status` and `state list|show|pull`: they can watch a run, and a role or
    /// a folder they may only read is enough). An earlier build's `state.json` not yet
    /// imported is read in its place; a state never recorded reads as empty, with a note.
    public static func read(manifestPath: String, in directory: String? = nil, environment: [String: String],
                            openStore: StoreOpener) async throws -> Reading {
        let manifest = try ManifestLoader.load(path: manifestPath, in: directory).resolvingEndpoint(environment: environment)
        let layout = Layout(manifestPath: manifestPath, output: manifest.output, workingDirectory: directory)
        let store = try await openStore(manifest, layout, environment, true)
        let state: State
        do {
            state = try await store.load()
            await store.close()
        } catch {
            await store.close()
            throw error
        }
        guard state.lineage.isEmpty, state.partitions.isEmpty else {
            return Reading(manifest: manifest, layout: layout, state: state, notes: [])
        }
        if LegacyStateFile.exists(path: layout.legacyStatePath) {
            return Reading(manifest: manifest, layout: layout, state: try LegacyStateFile.loadWithJournal(path: layout.legacyStatePath), notes: [])
        }
        let note = Diagnostic(.note, "no state yet in \(store.name); segsync apply records it.")
        return Reading(manifest: manifest, layout: layout, state: state, notes: [note])
    }
}
