import Foundation

/// A ``StateStore`` in memory: for tests of the core and the commands that need no
/// database (as Hummingbird's examples keep an in-memory repository beside the
/// PostgreSQL one). One process, one lock holder at a time; nothing survives the process.
public final class MemoryStateStore: StateStore, Sendable {
    private struct Contents: Sendable {
        var state = State(lineage: "")
        var marks: [String: String] = [:]
        var holder: LockHolder?
    }

    private let contents = Locked(Contents())
    public let name: String

    public init(name: String = "the in-memory state") {
        self.name = name
    }

    public func lock(_ holder: LockHolder, timeout: Duration, waiting: @escaping @Sendable (LockHolder?) -> Void) async throws {
        let taken = contents.withLock { contents -> LockHolder? in
            if let current = contents.holder { return current }
            contents.holder = holder
            return nil
        }
        if let taken { throw lockTakenError(name, holder: taken, waited: .zero) }
    }

    public func load() async throws -> State { contents.value.state }

    public func commit(_ changes: [StateChange]) async throws {
        contents.withLock { contents in
            if contents.state.lineage.isEmpty { contents.state.lineage = UUID().uuidString.lowercased() }
            for change in changes { contents.state.partitions[change.key] = change.record }
            contents.state.serial += 1
        }
    }

    public func replace(with state: State) async throws {
        contents.withLock { $0.state = state; $0.marks = [:] }
    }

    public func claimed(_ operationIds: [String]) async throws -> Set<String> {
        let records = contents.value.state.partitions.values
        let held = Set(records.compactMap(\.operationId)).union(records.flatMap { $0.disowned ?? [] })
        return Set(operationIds.filter(held.contains))
    }

    /// One workspace: no other's intents.
    public func foreignIntents() async throws -> [CreateIntent] { [] }

    public func mark(_ name: String) async throws -> String? { contents.value.marks[name] }

    public func setMark(_ name: String, _ value: String?) async throws {
        contents.withLock { $0.marks[name] = value }
    }

    public func onLoss(_ handler: @escaping @Sendable (String) -> Void) {}

    public func close() async {
        contents.withLock { $0.holder = nil }
    }
}
