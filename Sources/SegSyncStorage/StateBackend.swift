import Foundation
import SegSync

/// Opens the ``StateStore`` a manifest's `state` block names.
public enum StateBackend {
    /// The store for `manifest` (SQLite at `.segsync/state.sqlite`, or the PostgreSQL
    /// workspace whose connection string is in the environment variable `state.urlEnv`).
    public static func open(_ manifest: Manifest, layout: Layout, environment: [String: String]) async throws -> any StateStore {
        switch manifest.state.backend {
        case .sqlite:
            try AtomicFile.makeDirectory(layout.stateDirectory)
            return try await SQLiteStateStore.open(path: layout.databasePath, lockPath: layout.lockPath,
                                                   workspace: manifest.state.workspace,
                                                   displayPath: layout.displayPath(layout.databasePath))
        case .postgres:
            let variable = manifest.state.urlEnv
            guard let url = environment[variable]?.trimmingCharacters(in: .whitespacesAndNewlines), !url.isEmpty else {
                throw SegSyncError("\(manifest.file) keeps state in PostgreSQL (state.backend: postgres), but \(variable) is not set; set it to the connection string, like postgres://user:password@host:5432/database?sslmode=require.")
            }
            return try await PostgresStateStore.open(url: url, variable: variable, workspace: manifest.state.workspace)
        }
    }
}

extension Workspace {
    /// Loads the manifest at `manifestPath`, opens its state store and takes the run lock
    /// for `command`, waiting up to `lockTimeout` for another run. The manifest's
    /// endpoint is the one `environment` makes effective
    /// (``Manifest/resolvingEndpoint(environment:)``). State an earlier build left in
    /// `.segsync/state.json` is imported first (``LegacyImport``).
    /// A relative `manifestPath` is below `directory` (the process's working directory when nil).
    public static func open(manifestPath: String, in directory: String? = nil, command: String, lockTimeout: Duration = .zero,
                            now: Date = Date(), environment: [String: String] = ProcessInfo.processInfo.environment,
                            waiting: @escaping @Sendable (Diagnostic) -> Void = { _ in }) async throws -> Workspace {
        let manifest = try ManifestLoader.load(path: manifestPath, in: directory).resolvingEndpoint(environment: environment)
        let layout = Layout(manifestPath: manifestPath, output: manifest.output, workingDirectory: directory)
        let store = try await StateBackend.open(manifest, layout: layout, environment: environment)
        do {
            let name = store.name
            try await store.lock(.current(command: command, now: now), timeout: lockTimeout) { holder in
                waiting(lockWaitingNote(name, holder: holder, timeout: lockTimeout))
            }
            var workspace = Workspace(manifest: manifest, layout: layout, store: store)
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
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let legacy = try LegacyStateFile.loadWithJournal(path: path)
        let current = try await store.load()
        var notes: [Diagnostic] = []
        if current.lineage.isEmpty, current.partitions.isEmpty {
            try await store.replace(with: legacy)
            notes.append(Diagnostic(.note, "imported \(legacy.partitions.count) partition\(legacy.partitions.count == 1 ? "" : "s") from \(layout.displayPath(path)) into \(store.name); the old file is kept as state.json.imported."))
        } else {
            notes.append(Diagnostic(.note, "\(store.name) already has state, so \(layout.displayPath(path)) was not imported; it is kept as state.json.imported."))
        }
        for file in [path, LegacyStateFile.journalPath(for: path)] where FileManager.default.fileExists(atPath: file) {
            guard rename(file, file + ".imported") == 0 else {
                throw SegSyncError("cannot rename \(file) aside after importing it: \(String(cString: strerror(errno))).")
            }
        }
        return notes
    }
}

extension StateBackend {
    /// The state of the manifest at `manifestPath`, read without the run lock (for
    /// `status` and `state list|show|pull`: they can watch a run). An earlier build's
    /// `state.json` not yet imported is read in its place.
    public static func read(manifestPath: String, in directory: String? = nil,
                            environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> (Manifest, Layout, State) {
        let manifest = try ManifestLoader.load(path: manifestPath, in: directory).resolvingEndpoint(environment: environment)
        let layout = Layout(manifestPath: manifestPath, output: manifest.output, workingDirectory: directory)
        let store = try await open(manifest, layout: layout, environment: environment)
        let state: State
        do {
            state = try await store.load()
            await store.close()
        } catch {
            await store.close()
            throw error
        }
        if state.lineage.isEmpty, state.partitions.isEmpty, FileManager.default.fileExists(atPath: layout.legacyStatePath) {
            return (manifest, layout, try LegacyStateFile.loadWithJournal(path: layout.legacyStatePath))
        }
        return (manifest, layout, state)
    }
}
