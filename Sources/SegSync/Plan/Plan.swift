import Foundation
import SegSyncVocabulary

/// What `apply` would do: one action per partition that needs work.
public struct Plan: Sendable, Equatable {
    /// The kinds of work, in the order the summary lists them.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// Create a new export for a partition that has none.
        case create
        /// Wait for an operation created by an earlier run.
        case resume
        /// Download the result of a finished operation.
        case download
        /// Fetch again an output that is missing or damaged on disk.
        case repair
        /// Export again a partition whose settings changed.
        case replace
        /// Delete an output that is no longer declared.
        case prune
        /// Export once more a provisional partition whose data is now final (`window.final`),
        /// keeping the file when the content did not change.
        case finalize
        /// Find on FullStory the export of a create whose answer was lost (its intent is
        /// in state), and follow it; create another only when no export matches it alone.
        case adopt

        var symbol: String {
            switch self {
            case .create: return "+"
            case .resume: return "~"
            case .download: return "↓"
            case .repair: return "!"
            case .replace: return "±"
            case .prune: return "-"
            case .finalize: return "⟳"
            case .adopt: return "?"
            }
        }
    }

    /// One partition's work.
    public struct Action: Sendable, Equatable {
        public var kind: Kind
        public var key: PartitionKey
        public var label: String
        public var end: Date
        /// Why, in a few words: "events csv", "format changed json → csv", "checksum mismatch".
        public var detail: String
        public var operationId: String?
        /// The output concerned, relative to the output folder.
        public var outputPath: String?
        /// The desired partition; nil for prunes.
        public var partition: Partition?
    }

    /// A partition whose exports failed ``Planner/attemptLimit`` times: skipped until
    /// `--retry-failed` or a manifest change.
    public struct GivenUp: Sendable, Equatable {
        public var key: PartitionKey
        public var label: String
        public var attempts: Int
        public var lastError: String
    }

    public var actions: [Action]

    /// The actions apply works through, partition by partition: all but the prunes.
    public var work: [Action] { actions.filter { $0.kind != .prune } }
    /// The prunes, done after the work when it had no errors.
    public var prunes: [Action] { actions.filter { $0.kind == .prune } }
    public var upToDate: Int
    /// Outputs the lockfile and folder vouch for but state has no record of (a lost
    /// state): apply records them again without downloading anything.
    public var adoptions: [Lockfile.Entry]
    public var givenUp: [GivenUp]
    /// Records apply drops: no file, and no declared partition wants them any more.
    public var forget: [PartitionKey]
    /// Things worth knowing that need no action: files segsync never wrote, leftovers.
    public var notes: [Diagnostic]
    public var now: Date
    public var lineage: String
    public var serial: Int
    public var manifestSHA256: String
    /// The options the plan was made with, so a saved plan is applied the same way.
    public var options: Planner.Options
    /// In-flight operations as the API reported them when the plan was made (state holds
    /// what the last run saw). A saved plan keeps them, as Terraform keeps the refreshed
    /// state in its plan, so applying it later compares like with like.
    public var refreshed: [RefreshedOperation] = []

    public var hasChanges: Bool { !actions.isEmpty }

    /// How many actions of `kind` the plan has.
    public func count(_ kind: Kind) -> Int {
        var count = 0
        for index in actions.indices where actions[index].kind == kind { count += 1 }
        return count
    }
}

/// What a read-only refresh learnt about one in-flight operation.
public struct RefreshedOperation: Codable, Sendable, Equatable {
    public var export: String
    public var start: String
    public var operationId: String
    public var phase: Phase
    public var operationState: String?
    public var progress: Double?
    public var lastError: String?

    enum CodingKeys: String, CodingKey {
        case export, start, phase, progress
        case operationId = "operation_id"
        case operationState = "operation_state"
        case lastError = "last_error"
    }

    /// The records of `refreshed` that differ from `recorded` (the refresh changed them).
    public static func changes(from recorded: State, to refreshed: State) -> [RefreshedOperation] {
        refreshed.partitions.compactMap { key, record -> RefreshedOperation? in
            guard let id = record.operationId, recorded.partitions[key] != record else { return nil }
            return RefreshedOperation(
                export: record.export, start: Timestamp.format(record.start), operationId: id, phase: record.phase,
                operationState: record.operationState, progress: record.progress, lastError: record.lastError)
        }.sorted { ($0.export, $0.start) < ($1.export, $1.start) }
    }

    /// Puts what the refresh learnt back into `state`, for records that still hold the
    /// same operation; anything else moved on since and is left as it is.
    public static func overlay(_ operations: [RefreshedOperation], on state: inout State) {
        for operation in operations {
            guard let start = Timestamp.parse(operation.start) else { continue }
            let key = PartitionKey(export: operation.export, start: start)
            guard var record = state[key], record.operationId == operation.operationId else { continue }
            record.phase = operation.phase
            record.operationState = operation.operationState
            record.progress = operation.progress
            record.lastError = operation.lastError
            state[key] = record
        }
    }
}
