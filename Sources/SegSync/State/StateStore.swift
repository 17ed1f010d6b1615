#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SegSyncVocabulary

/// Where segsync keeps state and takes the run lock.
///
/// Two engines implement it (module `SegSyncStorage`): SQLite in `.segsync/state.sqlite`
/// beside the manifest, and PostgreSQL for runners that share state. Every change is a
/// transaction, so a committed change — an operation id above all — survives a crash, and
/// a crash never leaves half a change behind. The planner never sees a store: it gets
/// the ``State`` that ``load()`` read.
public protocol StateStore: Sendable {
    /// What the store is, for messages: "the SQLite state .segsync/state.sqlite".
    var name: String { get }

    /// Takes the run lock, waiting up to `timeout` for another run to release it
    /// (`.zero`: not at all). Throws, naming the holder, when it stays taken. The lock is
    /// released by ``close()`` and by the process or connection ending. `waiting` is
    /// called once, with the holder, when the lock is taken and `timeout` lets it wait.
    func lock(_ holder: LockHolder, timeout: Duration, waiting: @escaping @Sendable (LockHolder?) -> Void) async throws

    /// The whole state as one consistent snapshot; an empty state (no lineage yet) when
    /// nothing was ever committed.
    func load() async throws -> State

    /// Commits `changes` in one durable transaction and bumps the serial; the first
    /// commit gives the state its lineage.
    func commit(_ changes: [StateChange]) async throws

    /// Replaces the whole state, lineage and serial included, in one transaction
    /// (`segsync state push`, the import of an earlier build's `state.json`).
    func replace(with state: State) async throws

    /// Which of `operationIds` a record holds as its operation id, or lists as disowned
    /// (``PartitionRecord/disowned``): in the whole database, every workspace's records,
    /// not only this one's. An operation no record claims may be the export of a create
    /// whose answer was lost (``Adoption``).
    func claimed(_ operationIds: [String]) async throws -> Set<String>

    /// The open create intents (``CreateIntent``) of every other workspace in this
    /// database: an export in one of their windows may be theirs, so this workspace
    /// adopts none there (``Adoption``).
    func foreignIntents() async throws -> [CreateIntent]

    /// Small named values kept beside the state (``LockfileMark``).
    func mark(_ name: String) async throws -> String?
    func setMark(_ name: String, _ value: String?) async throws

    /// Calls `handler` once if the store is lost while open (a PostgreSQL connection
    /// closed under the run: its lock went with it). Nothing is written after that.
    func onLoss(_ handler: @escaping @Sendable (String) -> Void)

    /// Releases the lock and the connection.
    func close() async
}

extension StateStore {
    /// Takes the run lock, waiting up to `timeout`, without being told who holds it meanwhile.
    public func lock(_ holder: LockHolder, timeout: Duration) async throws {
        try await lock(holder, timeout: timeout, waiting: { _ in })
    }
}

/// One partition's change: its whole new record, or its removal.
public struct StateChange: Sendable, Equatable {
    public var key: String
    public var record: PartitionRecord?

    public init(_ key: String, _ record: PartitionRecord?) {
        self.key = key
        self.record = record
    }

    /// The changes that turn `old` into `new`.
    public static func between(_ old: State, _ new: State) -> [StateChange] {
        var changes: [StateChange] = []
        for (key, record) in new.partitions where old.partitions[key] != record {
            changes.append(StateChange(key, record))
        }
        for key in old.partitions.keys where new.partitions[key] == nil {
            changes.append(StateChange(key, nil))
        }
        return changes.sorted { $0.key < $1.key }
    }
}

/// Who holds the run lock, for the error the next run prints.
public struct LockHolder: Sendable, Equatable, Codable {
    public var host: String
    public var pid: Int
    public var command: String
    public var started: Date

    public init(host: String, pid: Int, command: String, started: Date) {
        self.host = host
        self.pid = pid
        self.command = command
        self.started = started
    }

    /// This process, running `command`.
    public static func current(command: String, now: Date = Date()) -> LockHolder {
        var name = [CChar](repeating: 0, count: 256)
        let host = gethostname(&name, name.count) == 0 ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "unknown host"
        return LockHolder(host: host, pid: Int(getpid()), command: command, started: now)
    }

    /// "pid 4242 on runner-7, 'segsync apply', started 2026-12-01T09:00:00Z"
    public var description: String {
        "pid \(pid) on \(host), '\(command)', started \(Timestamp.format(started))"
    }
}

/// What a run says while it waits for the lock.
public func lockWaitingNote(_ store: String, holder: LockHolder?, timeout: Duration) -> Diagnostic {
    let who = holder.map { "held by \($0.description)" } ?? "holder unknown"
    return Diagnostic(.note, "waiting up to \(Span.describe(timeout)) for the lock on \(store) (\(who)).")
}

/// The error a run gets when the lock stays taken.
public func lockTakenError(_ store: String, holder: LockHolder?, waited: Duration) -> SegSyncError {
    let who = holder.map { "held by \($0.description)" } ?? "holder unknown"
    let waitedText = waited > .zero ? " after waiting \(Span.describe(waited))" : ""
    let advice = waited > .zero ? "try again later or with a longer --lock-timeout" : "wait for it to finish, or pass --lock-timeout 10m to wait for it"
    return SegSyncError("another segsync run has the lock on \(store)\(waitedText) (\(who)); \(advice).")
}
