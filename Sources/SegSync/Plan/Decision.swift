import Foundation
import SegSyncVocabulary

extension Planner {
    /// One desired partition as the planner weighs it: the partition, where its output
    /// goes, and the settings it is exported with.
    public struct Desired: Sendable, Equatable {
        public var partition: Partition
        /// Relative to the output folder (``Layout/relativePath(for:export:)``).
        public var path: String
        public var export: ExportSpec
        /// The settings under the manifest's API (``ExportParameters/init(_:in:)``).
        public var parameters: ExportParameters

        public init(partition: Partition, path: String, export: ExportSpec, parameters: ExportParameters) {
            self.partition = partition
            self.path = path
            self.export = export
            self.parameters = parameters
        }
    }

    /// What a plan does with one partition: the plan's legend. ``decide(desired:record:lockEntry:observed:options:)``
    /// gives one for every desired partition, ``decide(recorded:declared:manifestPrunes:options:)``
    /// one for every recorded output no desired partition claims.
    public enum Decision: Sendable, Equatable {
        /// Export it: nothing usable is recorded. `detail` says what ("events csv").
        case create(detail: String)
        /// Wait for the operation an earlier run created.
        case resume(operation: String?, detail: String)
        /// Download what a finished operation made.
        case download(operation: String?, detail: String)
        /// Fetch the recorded output again: it is missing or damaged on disk.
        case repair(problem: String, operation: String?, output: String)
        /// Export again: its settings or time range changed since it was made.
        case replace(reason: String)
        /// Delete a recorded output that is no longer wanted.
        case prune(reason: String)
        /// Leave a recorded output that is no longer wanted (the manifest does not prune).
        case keep
        /// Nothing to do. `adopting` is a lockfile entry state lacks, recorded again by apply.
        case upToDate(adopting: Lockfile.Entry?)
        /// Its exports failed ``attemptLimit`` times: skipped until `--retry-failed`.
        case givenUp(attempts: Int, lastError: String)
        /// Export once more: the output is provisional (exported before `end + final`)
        /// and `end + final` has passed. `exported` is when the provisional export was made.
        case finalize(exported: Date?)
        /// Look in the API's operations list for the export a create sent at `sent` made
        /// (its answer was lost), before creating another (``Adoption``).
        case adopt(sent: Date)
    }

    /// When a partition's data is final: `end + final` in the export's time zone.
    public static func finalAt(_ end: Date, window: WindowSpec, calendar: Calendar) -> Date {
        window.final.advance(end, in: calendar)
    }

    /// Whether an output exported at `exported` is provisional: its window asks for
    /// finality beyond `settle`, and the export was made before `end + final`. An output
    /// whose export time is unknown (recorded before segsync kept it) is final.
    /// `calendar` is made only when needed: most windows have no `final`.
    public static func isProvisional(exported: Date?, end: Date, window: WindowSpec, calendar: @autoclosure () -> Calendar) -> Bool {
        guard window.hasProvisional, let exported else { return false }
        return exported < finalAt(end, window: window, calendar: calendar())
    }

    /// The provisional output's decision at `now`: finalize once `end + final` has passed.
    static func provisional(exported: Date?, desired: Desired, now: Date) -> Decision? {
        guard desired.export.window.hasProvisional, exported != nil else { return nil }
        let calendar = desired.export.calendar
        guard isProvisional(exported: exported, end: desired.partition.end, window: desired.export.window, calendar: calendar),
              finalAt(desired.partition.end, window: desired.export.window, calendar: calendar) <= now else { return nil }
        return .finalize(exported: exported)
    }

    /// The decision for one desired partition, from its state record (preferred), else
    /// its lockfile entry, and what the folder holds.
    public static func decide(
        desired: Desired, record: PartitionRecord?, lockEntry: Lockfile.Entry?, observed: ObservedFiles, options: Options, now: Date
    ) -> Decision {
        let what = "\(desired.export.type.rawValue) \(desired.export.format.rawValue)"
        guard let record else { return decide(desired: desired, lockEntry: lockEntry, observed: observed, what: what, now: now) }
        if record.fingerprint != desired.partition.fingerprint {
            let reason = record.parameters.changes(to: desired.parameters) ?? "time range changed"
            switch record.phase {
            case .downloaded: return .replace(reason: reason)
            case .requested, .running, .completed: return .replace(reason: "\(reason); abandons op \(short(record.operationId))")
            case .failed, .creating: return .create(detail: "\(what) (\(reason))")
            }
        }
        switch record.phase {
        case .downloaded:
            guard let output = record.output else { return .create(detail: what) }
            // A damaged output is repaired first (from its own export); it is finalized after.
            if let problem = observed.problems[output.path] {
                return .repair(problem: problem.description, operation: record.operationId, output: output.path)
            }
            return provisional(exported: output.exportedAt, desired: desired, now: now) ?? .upToDate(adopting: nil)
        case .creating:
            // Only the production API lists operations; elsewhere the lost create is sent again.
            guard desired.parameters.dialect == .fullstory, let intent = record.intent else {
                return .create(detail: "\(what) (retry; the answer to an earlier create was lost)")
            }
            return .adopt(sent: intent.sentAt)
        case .requested, .running:
            return .resume(operation: record.operationId, detail: "op \(short(record.operationId)) (\(progress(record)))")
        case .completed:
            return .download(operation: record.operationId, detail: "op \(short(record.operationId)) (COMPLETED)")
        case .failed:
            if record.attempts >= attemptLimit, !options.retryFailed {
                return .givenUp(attempts: record.attempts, lastError: record.lastError ?? "unknown error")
            }
            let why = record.lastError.map { ": \(clause($0))" } ?? ""
            return .create(detail: "\(what) (retry; last attempt failed\(why))")
        }
    }

    /// No state record: the lockfile's word (a state lost or never shared), else nothing.
    static func decide(desired: Desired, lockEntry: Lockfile.Entry?, observed: ObservedFiles, what: String, now: Date) -> Decision {
        guard let entry = lockEntry else { return .create(detail: what) }
        if entry.fingerprint != desired.partition.fingerprint {
            return .replace(reason: desired.parameters.changes(since: entry) ?? "settings changed since segsync.lock was written")
        }
        if let problem = observed.problems[entry.path] {
            return .repair(problem: problem.description, operation: nil, output: entry.path)
        }
        // The lockfile says when a provisional output was exported ("final": false).
        return provisional(exported: entry.provisional?.exported, desired: desired, now: now) ?? .upToDate(adopting: entry)
    }

    /// The decision for a recorded output no desired partition claims: its export's
    /// window moved on (`declared` is that export), or the export is gone (nil).
    public static func decide(recorded output: RecordedOutput, declared: ExportSpec?, manifestPrunes: Bool, options: Options) -> Decision {
        if let declared {
            return declared.prune || options.forcePrune ? .prune(reason: "outside the window") : .keep
        }
        return manifestPrunes || options.forcePrune ? .prune(reason: "no longer declared") : .keep
    }

    /// The action a decision puts in the plan; nil for the decisions that need none.
    static func action(_ decision: Decision, for desired: Desired, now: Date) -> Plan.Action? {
        func act(_ kind: Plan.Kind, _ detail: String, operation: String? = nil, output: String? = nil) -> Plan.Action {
            Plan.Action(kind: kind, key: desired.partition.key, label: desired.partition.label, end: desired.partition.end,
                        detail: detail, operationId: operation, outputPath: output ?? desired.path, partition: desired.partition)
        }
        switch decision {
        case .create(let detail): return act(.create, detail)
        case .resume(let operation, let detail): return act(.resume, detail, operation: operation)
        case .download(let operation, let detail): return act(.download, detail, operation: operation)
        case .repair(let problem, let operation, let output): return act(.repair, problem, operation: operation, output: output)
        case .replace(let reason): return act(.replace, reason)
        case .finalize(let exported): return act(.finalize, finalizeDetail(exported: exported, now: now))
        case .adopt(let sent): return act(.adopt, adoptDetail(sent: sent, now: now))
        case .prune, .keep, .upToDate, .givenUp: return nil
        }
    }

    /// `awaiting adoption: the answer to a create sent 2026-12-05T01:02:03.250Z (4m ago) was lost`.
    static func adoptDetail(sent: Date, now: Date) -> String {
        let seconds = now.timeIntervalSince(sent)
        let age = seconds >= 0 ? " (\(Span.approximate(seconds: seconds)) ago)" : ""
        return "awaiting adoption: the answer to a create sent \(Timestamp.format(sent))\(age) was lost"
    }

    /// `provisional, exported 22h ago`.
    static func finalizeDetail(exported: Date?, now: Date) -> String {
        guard let exported else { return "provisional" }
        let seconds = now.timeIntervalSince(exported), hours = Int(seconds / 3600)
        let age = hours < 1 ? Span.approximate(seconds: seconds) : Span(days: hours / 24, hours: hours % 24).description
        return "provisional, exported \(age) ago"
    }

    /// A recorded output: from state (preferred) or the lockfile.
    public struct RecordedOutput: Sendable, Equatable {
        public var key: PartitionKey
        public var label: String
        public var end: Date
        public var path: String
        public var operationId: String?
    }

    static func pruneAction(_ output: RecordedOutput, reason: String) -> Plan.Action {
        Plan.Action(kind: .prune, key: output.key, label: output.label, end: output.end, detail: reason,
                    operationId: output.operationId, outputPath: output.path, partition: nil)
    }
}
