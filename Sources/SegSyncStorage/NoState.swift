import SegSync

/// The store a read-only command sees where nothing was ever recorded: no SQLite file, or
/// no segsync tables in the database. It reads as an empty state and refuses writes, so
/// `status` and `state list` create nothing (no `.segsync/state.sqlite`, no tables a
/// read-only role could not create anyway).
struct NoState: StateStore {
    let name: String

    func lock(_ holder: LockHolder, timeout: Duration, waiting: @escaping @Sendable (LockHolder?) -> Void) async throws {}
    func load() async throws -> State { State(lineage: "", serial: 0) }
    func commit(_ changes: [StateChange]) async throws { throw readOnly() }
    func replace(with state: State) async throws { throw readOnly() }
    func claimed(_ operationIds: [String]) async throws -> Set<String> { [] }
    func foreignIntents() async throws -> [CreateIntent] { [] }
    func mark(_ name: String) async throws -> String? { nil }
    func setMark(_ name: String, _ value: String?) async throws { throw readOnly() }
    func onLoss(_ handler: @escaping @Sendable (String) -> Void) {}
    func close() async {}

    private func readOnly() -> SegSyncError {
        SegSyncError("\(name) has no state yet and was opened for reading only; segsync apply records state.")
    }
}
