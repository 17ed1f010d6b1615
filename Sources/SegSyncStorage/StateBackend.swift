import Foundation
import SegSync

/// Opens the ``StateStore`` a manifest's `state` block names.
public enum StateBackend {
    /// The store for `manifest` (SQLite at `.segsync/state.sqlite`, or the PostgreSQL
    /// workspace whose connection string is in the environment variable `state.urlEnv`).
    /// `readOnly` (for commands that only read) creates and migrates nothing — no
    /// `.segsync` folder, no tables — and a state never recorded reads as empty.
    public static func open(_ manifest: Manifest, layout: Layout, environment: [String: String],
                            readOnly: Bool = false) async throws -> any StateStore {
        let workspace = manifest.state.workspace
        switch manifest.state.backend {
        case .sqlite:
            let (path, lock, display) = (layout.databasePath, layout.lockPath, layout.displayPath(layout.databasePath))
            if readOnly {
                return try await SQLiteStateStore.openReadOnly(path: path, lockPath: lock, workspace: workspace, displayPath: display)
            }
            try AtomicFile.makeDirectory(layout.stateDirectory)
            return try await SQLiteStateStore.open(path: path, lockPath: lock, workspace: workspace, displayPath: display)
        case .postgres:
            let (url, variable, timeout) = (try url(manifest, environment), manifest.state.urlEnv, try timeout(environment))
            if readOnly {
                return try await PostgresStateStore.openReadOnly(url: url, variable: variable, workspace: workspace, timeout: timeout)
            }
            return try await PostgresStateStore.open(url: url, variable: variable, workspace: workspace, timeout: timeout)
        }
    }

    /// The variable that bounds every call to a PostgreSQL state (``PostgresStateStore/timeout``).
    public static let timeoutVariable = "SEGSYNC_STATE_TIMEOUT"

    /// `SEGSYNC_STATE_TIMEOUT` (`30s`, `2m`), or ``PostgresStateStore/defaultTimeout``.
    static func timeout(_ environment: [String: String]) throws -> Duration {
        guard let text = environment[timeoutVariable]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else {
            return PostgresStateStore.defaultTimeout
        }
        guard let duration = Span.duration(text), duration > .zero else {
            throw SegSyncError("\(timeoutVariable) is '\(text)'; write how long a state call may wait for the database, like 30s or 2m.")
        }
        return duration
    }

    /// The connection string in the variable `state.urlEnv` names.
    private static func url(_ manifest: Manifest, _ environment: [String: String]) throws -> String {
        let variable = manifest.state.urlEnv
        guard let url = environment[variable]?.trimmingCharacters(in: .whitespacesAndNewlines), !url.isEmpty else {
            throw SegSyncError("\(manifest.file) keeps state in PostgreSQL (state.backend: postgres), but \(variable) is not set; set it to the connection string, like postgres://user:password@host:5432/database?sslmode=require.")
        }
        return url
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

extension StateBackend {
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
    public static func read(manifestPath: String, in directory: String? = nil,
                            environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> Reading {
        let manifest = try ManifestLoader.load(path: manifestPath, in: directory).resolvingEndpoint(environment: environment)
        let layout = Layout(manifestPath: manifestPath, output: manifest.output, workingDirectory: directory)
        let store = try await open(manifest, layout: layout, environment: environment, readOnly: true)
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
