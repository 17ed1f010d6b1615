import Foundation
import FullStoryContract

/// What an apply did.
public struct ApplyReport: Sendable {
    /// How one partition's work ended in this run.
    public enum Outcome: Sendable, Equatable {
        case done(String)
        case stillRunning
        case failed(String)
    }

    /// A partition that failed, with the sentence that says why.
    public struct Failure: Sendable, Equatable {
        public var export: String
        public var label: String
        public var message: String
    }

    /// Each partition worked on, in the order its work ended.
    public struct Result: Sendable, Equatable {
        public var action: Plan.Action
        public var outcome: Outcome
    }

    public var results: [Result] = []
    public var done = 0
    public var stillRunning: [Plan.Action] = []
    public var failures: [Failure] = []
    public var pruneSkipped = 0
    /// Exports this run created: those the API answered with an id, and those whose
    /// answer was lost (``unknownCreates``), which may exist on the server.
    public var createCalls = 0
    /// Creates that may have made an export whose id never arrived.
    public var unknownCreates = 0
    /// Whether the API lists operations, so that an export with an unknown id is looked
    /// for (``Adoption``) rather than exported again by the next run.
    public var listsOperations = true
    /// Provisional partitions whose final export arrived, and of those, how many changed.
    public var finalized = 0
    public var finalizedChanged = 0
    /// Exports of lost creates found in the operations list and followed (``Adoption``).
    public var adopted = 0
    /// Of those, the ones whose answers were lost in this very run.
    public var adoptedAtOnce = 0
    /// Exports on FullStory in a lost create's window that no partition claims: not
    /// adopted because the match was not one-to-one. Each may duplicate a partition
    /// exported again; a person can look at them.
    public var unclaimedExports: [ExportOperation] = []
    /// Why the whole run stopped early (a rejected key), said once; every recorded
    /// operation is kept for the next run.
    public var stopped: String?
    /// `segsync.lock` and `SHA256SUMS` could not be written (``DerivedFilesError``).
    public var derivedFilesProblem: String?

    public init() {}

    mutating func record(_ action: Plan.Action, _ outcome: Outcome) {
        results.append(Result(action: action, outcome: outcome))
        switch outcome {
        case .done: done += 1
        case .stillRunning: stillRunning.append(action)
        case .failed(let message): failures.append(Failure(export: action.key.export, label: action.label, message: message))
        }
    }

    public var converged: Bool { failures.isEmpty && stillRunning.isEmpty && pruneSkipped == 0 && stopped == nil && derivedFilesProblem == nil }
}
