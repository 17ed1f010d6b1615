import Foundation
import SegSync

/// Opens the ``StateStore`` a manifest's `state` block names: the real engines, the
/// ``StoreOpener`` commands use unless a test gives them another.
public enum StateBackend {
    /// ``open(_:layout:environment:readOnly:)`` as a value.
    public static let opener: StoreOpener = { manifest, layout, environment, readOnly in
        try await open(manifest, layout: layout, environment: environment, readOnly: readOnly)
    }

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

/// Where a manifest's outputs live: its folder, or the bucket `output: s3://…` names.
public enum OutputBackend {
    public static let opener: OutputOpener = { manifest, layout, environment in
        manifest.bucket == nil ? FolderOutput(layout: layout) : try BucketOutput.open(manifest, environment: environment)
    }
}
