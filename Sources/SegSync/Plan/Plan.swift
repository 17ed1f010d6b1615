import Foundation

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

        var symbol: String {
            switch self {
            case .create: return "+"
            case .resume: return "~"
            case .download: return "↓"
            case .repair: return "!"
            case .replace: return "±"
            case .prune: return "-"
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
    public var upToDate: Int
    /// Outputs the lockfile and folder vouch for but state has no record of (a lost
    /// state): apply records them again without downloading anything.
    public var adoptions: [Lockfile.Entry]
    public var givenUp: [GivenUp]
    /// Records apply drops: no file, and no declared partition wants them any more.
    public var forget: [PartitionKey]
    /// Things worth knowing that need no action: files segsync never wrote, leftovers.
    public var notes: [String]
    public var now: Date
    public var lineage: String
    public var serial: Int
    public var manifestSHA256: String
    /// The options the plan was made with, so a saved plan is applied the same way.
    public var options: Planner.Options

    public var hasChanges: Bool { !actions.isEmpty }

    public func count(_ kind: Kind) -> Int {
        actions.reduce(0) { $0 + ($1.kind == kind ? 1 : 0) }
    }
}
