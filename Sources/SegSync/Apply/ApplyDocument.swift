import Foundation
import SegSyncVocabulary

/// `segsync apply --json`: what the run did, for machines. One document at the end (with
/// `--json-events`, the last line, with `"event": "report"`).
public struct ApplyDocument: MachineDocument, Sendable {
    /// One partition worked on, with its outcome and, once downloaded, its file.
    public struct Partition: Encodable, Sendable {
        public var export: String
        public var partition: String
        public var start: String
        public var end: String
        /// The plan's action: create, resume, download, repair, replace, prune.
        public var action: Plan.Kind
        /// done, failed or still_running.
        public var outcome: String
        public var message: String?
        public var path: String?
        public var bytes: Int64?
        public var sha256: String?
        /// A finalization: whether the final export's content differed (the file was replaced).
        public var changed: Bool?

        enum CodingKeys: String, CodingKey {
            case export, partition, start, end, action, outcome, message, path, bytes, sha256, changed
        }
    }

    public var event: String?
    public var now: String
    public var dryRun: Bool
    /// The plan's counts, as in `plan --json`.
    public var plan: [String: Int]
    public var done: Int
    public var failed: Int
    public var stillRunning: Int
    public var exportsCreated: Int
    /// Of ``exportsCreated``, those whose answer was lost: they may exist on the server.
    public var exportsWithUnknownId: Int
    /// Why the run stopped early (a rejected key); every recorded export is kept.
    public var stopped: String?
    /// `segsync.lock` and `SHA256SUMS` could not be written at the end.
    public var filesProblem: String?
    public var prunesSkipped: Int
    /// Provisional partitions whose final export arrived, and how many of them changed.
    public var finalized: Int
    public var finalizedChanged: Int
    /// Exports of lost creates found in the operations list and followed.
    public var adopted: Int
    /// Exports on FullStory that no partition claims: lost creates not matched one to one.
    public var unclaimedExports: [Unclaimed]
    public var interrupted: Bool
    /// Every partition converged: nothing failed, nothing left running, nothing given up.
    public var converged: Bool
    /// The exit status the command ends with (see the README's table).
    public var exitCode: Int32
    public var partitions: [Partition]

    enum CodingKeys: String, CodingKey {
        case event, now, plan, done, failed, interrupted, converged, partitions
        case dryRun = "dry_run", stillRunning = "still_running"
        case exportsCreated = "exports_created", prunesSkipped = "prunes_skipped", exitCode = "exit_code"
        case exportsWithUnknownId = "exports_with_unknown_id", stopped, filesProblem = "files_problem"
        case finalized, finalizedChanged = "finalized_changed", adopted, unclaimedExports = "unclaimed_exports"
    }

    /// An export no partition claims: its operation id and when FullStory created it.
    public struct Unclaimed: Codable, Sendable, Equatable {
        public var operationId: String
        public var createdAt: String?

        enum CodingKeys: String, CodingKey {
            case operationId = "operation_id", createdAt = "created_at"
        }
    }

    /// A downloaded file: where, how big, and its SHA-256.
    public typealias File = (path: String, bytes: Int64, sha256: String)

    public init(plan: Plan, report: ApplyReport?, files: [PartitionKey: File], interrupted: Bool, exitCode: Int32, dryRun: Bool = false) {
        now = Timestamp.format(plan.now)
        self.dryRun = dryRun
        self.plan = PlanRenderer.document(plan).summary
        let report = report ?? ApplyReport()
        done = report.done
        failed = report.failures.count
        stillRunning = report.stillRunning.count
        exportsCreated = report.createCalls
        exportsWithUnknownId = report.unknownCreates
        stopped = report.stopped
        filesProblem = report.derivedFilesProblem
        prunesSkipped = report.pruneSkipped
        finalized = report.finalized
        finalizedChanged = report.finalizedChanged
        adopted = report.adopted
        unclaimedExports = report.unclaimedExports.map { Unclaimed(operationId: $0.id, createdAt: $0.createdAt.map(Timestamp.format)) }
        self.interrupted = interrupted
        converged = dryRun ? !plan.hasChanges && plan.givenUp.isEmpty : !interrupted && exitCode == 0
        self.exitCode = exitCode
        partitions = report.results.map { result in
            let action = result.action
            var entry = Partition(export: action.key.export, partition: action.label, start: Timestamp.format(action.key.start),
                                  end: Timestamp.format(action.end), action: action.kind, outcome: "done")
            switch result.outcome {
            case .done(let detail):
                if action.kind == .finalize || detail.hasPrefix(PartitionRun.finalizedPrefix) {
                    entry.changed = detail == PartitionRun.finalizedChanged
                }
                let file = files[action.key]
                entry.path = file?.path ?? (action.kind == .prune ? action.outputPath : nil)
                entry.bytes = file?.bytes
                entry.sha256 = file?.sha256
            case .failed(let message):
                entry.outcome = "failed"
                entry.message = message
            case .stillRunning:
                entry.outcome = "still_running"
            }
            return entry
        }.sorted { ($0.export, $0.start) < ($1.export, $1.start) }
    }
}
