import Foundation
import SegSyncVocabulary

/// Computes a ``Plan``: a pure function of (manifest, state, lockfile, observed files, now).
/// No I/O, no clock; the same inputs always give the same plan.
public enum Planner {
    /// What the command line adds to a plan.
    public struct Options: Sendable, Equatable, Codable {
        /// Limit the plan to these exports (empty: all).
        public var targets: [String] = []
        /// Prune even where the manifest does not ask to.
        public var forcePrune = false
        /// Export again partitions that have used up their attempts.
        public var retryFailed = false
        /// The folder was observed by hashing every file (`--checksum`). The planner reads
        /// only `observed`; this travels with the plan so a saved plan is checked the way
        /// it was made.
        public var checksum = false

        public init(targets: [String] = [], forcePrune: Bool = false, retryFailed: Bool = false, checksum: Bool = false) {
            self.targets = targets
            self.forcePrune = forcePrune
            self.retryFailed = retryFailed
            self.checksum = checksum
        }
    }

    /// Exports created for one partition (over all runs) before segsync stops trying
    /// on its own and reports it: an export that keeps failing should not cost a create
    /// on every CI run. A changed manifest (a new fingerprint) starts afresh.
    public static let attemptLimit = 3

    /// The files a scan should check: state's records first, then the lockfile's.
    public static func expectedFiles(state: State, lockfile: Lockfile) -> [String: ExpectedFile] {
        var expected: [String: ExpectedFile] = [:]
        expected.reserveCapacity(max(lockfile.entries.count, state.partitions.count))
        for entry in lockfile.entries {
            expected[entry.path] = ExpectedFile(bytes: entry.bytes, sha256: entry.sha256, identity: entry.etag)
        }
        for record in state.partitions.values where record.phase == .downloaded {
            if let output = record.output {
                expected[output.path] = ExpectedFile(bytes: output.bytes, sha256: output.sha256, modified: output.modified, identity: output.identity)
            }
        }
        return expected
    }

    /// Checks `--target` names against the manifest.
    public static func validate(targets: [String], in manifest: Manifest) throws {
        let names = manifest.exports.map(\.name)
        for target in targets where !names.contains(target) {
            throw SegSyncError("--target \(target): no export of that name in the manifest\(didYouMean(target, names)).")
        }
    }

    /// The plan: what apply must do to make the folder match the manifest at `now`. A pure
    /// function of its arguments (``decide(desired:record:lockEntry:observed:options:)``
    /// per partition, then the notes); throws only for unknown `--target`s and windows
    /// that cannot be planned.
    public static func plan(
        manifest: Manifest, state: State, lockfile: Lockfile, observed: ObservedFiles, now: Date, options: Options = .init()
    ) throws -> Plan {
        try validate(targets: options.targets, in: manifest)
        let selected = manifest.exports.filter { options.targets.isEmpty || options.targets.contains($0.name) }
        var lockIndex: [PartitionKey: Lockfile.Entry] = [:]
        for entry in lockfile.entries { lockIndex[entry.key] = entry }
        // Paths desired partitions will write: a recorded output at one of these (an old
        // partition with the same name, after a time zone change) is superseded, not pruned.
        var claimedPaths = Set<String>()
        var desired: [String: [(partition: Partition, path: String)]] = [:]
        for export in manifest.exports {
            desired[export.name] = try manifest.partitions(of: export, now: now).map { partition in
                let path = Layout.relativePath(for: partition, export: export)
                claimedPaths.insert(path)
                return (partition, path)
            }
        }
        let recorded = Dictionary(grouping: recordedOutputs(state: state, lockfile: lockfile), by: \.key.export)

        var tally = Tally()
        for export in selected {
            let parameters = ExportParameters(export, in: manifest)
            var matched = 0  // desired partitions with a recorded output
            for (partition, path) in desired[export.name] ?? [] {
                // Made for the moment: an array of them would copy the export's settings 36,500 times.
                let item = Desired(partition: partition, path: path, export: export, parameters: parameters)
                tally.desiredKeys.insert(item.partition.key)
                let record = state[item.partition.key]
                let entry = record == nil ? lockIndex[item.partition.key] : nil
                if record?.output != nil || entry != nil { matched += 1 }
                tally.add(decide(desired: item, record: record, lockEntry: entry, observed: observed, options: options, now: now), for: item, now: now)
            }
            // This export's recorded outputs that have rolled out of its window (none
            // when a desired partition matched every one of them).
            let outputs = recorded[export.name] ?? []
            let rolledOut = matched == outputs.count ? [] : outputs.filter { !tally.desiredKeys.contains($0.key) && !claimedPaths.contains($0.path) }
            for output in rolledOut.sorted(by: { $0.key < $1.key }) {
                tally.add(decide(recorded: output, declared: export, manifestPrunes: manifest.prune, options: options), for: output)
            }
            tally.endExport()
        }
        // Outputs of exports that are no longer declared at all (not with --target: it
        // narrows the run to the named exports).
        if options.targets.isEmpty {
            let declared = Set(manifest.exports.map(\.name))
            for name in recorded.keys.sorted() where !declared.contains(name) {
                for output in recorded[name]!.sorted(by: { $0.key < $1.key }) {
                    tally.add(decide(recorded: output, declared: nil, manifestPrunes: manifest.prune, options: options), for: output, undeclared: true)
                }
            }
        }
        return Plan(
            actions: tally.actions, upToDate: tally.upToDate, adoptions: tally.adoptions, givenUp: tally.givenUp,
            forget: forgotten(state: state, manifest: manifest, selected: selected, desiredKeys: tally.desiredKeys, options: options),
            notes: notes(tally, observed: observed), now: now,
            lineage: state.lineage, serial: state.serial, manifestSHA256: manifest.sha256, options: options)
    }

    /// The plan as it is put together, one decision at a time.
    struct Tally {
        var actions: [Plan.Action] = []
        /// The current export's actions, sorted by partition when it ends.
        var exportActions: [Plan.Action] = []
        var givenUp: [Plan.GivenUp] = []
        var adoptions: [Lockfile.Entry] = []
        var upToDate = 0
        var keptRolledOut = 0
        var keptUndeclared = 0
        var desiredKeys = Set<PartitionKey>()

        mutating func add(_ decision: Decision, for desired: Desired, now: Date) {
            switch decision {
            case .upToDate(let adopting):
                upToDate += 1
                if let adopting { adoptions.append(adopting) }
            case .givenUp(let attempts, let lastError):
                givenUp.append(Plan.GivenUp(key: desired.partition.key, label: desired.partition.label, attempts: attempts, lastError: lastError))
            default:
                if let action = Planner.action(decision, for: desired, now: now) { exportActions.append(action) }
            }
        }

        mutating func add(_ decision: Decision, for output: RecordedOutput, undeclared: Bool = false) {
            switch decision {
            case .prune(let reason):
                let action = Planner.pruneAction(output, reason: reason)
                if undeclared { actions.append(action) } else { exportActions.append(action) }
            case .keep:
                if undeclared { keptUndeclared += 1 } else { keptRolledOut += 1 }
            default:
                break
            }
        }

        mutating func endExport() {
            exportActions.sort { ($0.key.start, $0.kind.rawValue) < ($1.key.start, $1.kind.rawValue) }
            actions.append(contentsOf: exportActions)
            exportActions.removeAll(keepingCapacity: true)
        }
    }

    /// Records without a file that no declared partition wants any more (failed or
    /// abandoned exports of old partitions): dropped by apply, never polled again.
    static func forgotten(state: State, manifest: Manifest, selected: [ExportSpec], desiredKeys: Set<PartitionKey>, options: Options) -> [PartitionKey] {
        let selectedNames = Set(selected.map(\.name))
        let declaredNames = Set(manifest.exports.map(\.name))
        return state.partitions.values.filter { record in
            record.output == nil && !desiredKeys.contains(record.key)
                && (selectedNames.contains(record.export) || (options.targets.isEmpty && !declaredNames.contains(record.export)))
        }.map(\.key).sorted()
    }

    /// What the plan should tell besides its actions: outputs kept, partitions given up
    /// on, and files in the folder segsync did not write.
    static func notes(_ tally: Tally, observed: ObservedFiles) -> [Diagnostic] {
        func plural(_ count: Int, _ one: String, _ many: String) -> String { count == 1 ? one : many }
        func note(_ text: String) -> Diagnostic { Diagnostic(.note, text) }
        var notes: [Diagnostic] = []
        let kept = tally.keptRolledOut, gone = tally.keptUndeclared, given = tally.givenUp
        if kept > 0 {
            notes.append(note("\(kept) recorded output\(plural(kept, " has", "s have")) left \(plural(kept, "its", "their")) export's window and \(plural(kept, "is", "are")) kept; set prune: true on the export or pass --prune to delete \(plural(kept, "it", "them"))."))
        }
        if gone > 0 {
            notes.append(note("\(gone) recorded output\(plural(gone, " belongs", "s belong")) to exports no longer declared and \(plural(gone, "is", "are")) kept; set prune: true or pass --prune to delete \(plural(gone, "it", "them"))."))
        }
        if !given.isEmpty {
            let list = given.prefix(5).map { "\($0.key.export) \($0.label) (\($0.lastError))" }.joined(separator: "; ")
            notes.append(note("\(given.count) partition\(plural(given.count, "", "s")) failed \(attemptLimit) exports and \(plural(given.count, "is", "are")) skipped: \(list)\(given.count > 5 ? "; …" : ""). Fix the cause, then run apply --retry-failed."))
        }
        // Unrecorded files where a planned export will write (state and lockfile both
        // lost) are replaced; the rest are someone else's and left alone.
        var plannedPaths = Set<String>()
        if !observed.unknownFiles.isEmpty {
            for action in tally.actions where action.kind != .prune { if let path = action.outputPath { plannedPaths.insert(path) } }
        }
        let replaced = observed.unknownFiles.filter { plannedPaths.contains($0) }
        let strangers = observed.unknownFiles.filter { !plannedPaths.contains($0) }
        if !replaced.isEmpty {
            notes.append(note("\(replaced.count) file\(plural(replaced.count, "", "s")) not recorded by segsync will be replaced by the planned export\(plural(replaced.count, "", "s")) of the same name: \(list(replaced))."))
        }
        if !strangers.isEmpty {
            notes.append(note("\(strangers.count) file\(plural(strangers.count, "", "s")) in the output folder \(plural(strangers.count, "was", "were")) not written by segsync and \(plural(strangers.count, "is", "are")) left alone: \(list(strangers))."))
        }
        let partial = observed.partialFiles
        if !partial.isEmpty {
            notes.append(note("\(partial.count) unfinished download\(plural(partial.count, "", "s")) (.partial) will be removed by apply: \(list(partial))."))
        }
        return notes
    }

    static func recordedOutputs(state: State, lockfile: Lockfile) -> [RecordedOutput] {
        var outputs: [RecordedOutput] = []
        outputs.reserveCapacity(state.partitions.count)
        for record in state.partitions.values {
            if let output = record.output {
                outputs.append(RecordedOutput(key: record.key, label: record.label, end: record.end, path: output.path, operationId: record.operationId))
            }
        }
        guard !lockfile.entries.isEmpty else { return outputs }  // unordered: callers sort what they keep
        let inState = Set(outputs.map(\.key))
        var fromLockfile: [PartitionKey: RecordedOutput] = [:]
        for entry in lockfile.entries where !inState.contains(entry.key) {
            fromLockfile[entry.key] = RecordedOutput(key: entry.key, label: Timestamp.format(entry.start), end: entry.end, path: entry.path, operationId: nil)
        }
        return outputs + fromLockfile.values
    }

    /// Enough of an operation id to tell it from the others: ids that are signed tokens
    /// share their first characters (every emulator id starts `eyJjIjox`), so the end,
    /// where they differ, is shown as well.
    public static func short(_ id: String?) -> String {
        guard let id else { return "?" }
        return id.count > 12 ? String(id.prefix(4)) + "…" + String(id.suffix(6)) : id
    }

    /// A sentence used inside another: no final full stop, so `(… failed: the export
    /// failed (injected failure))` does not stutter `.)`.
    static func clause(_ text: String) -> String {
        var text = text.trimmingCharacters(in: .whitespaces)
        while text.hasSuffix(".") { text.removeLast() }
        return text
    }

    static func progress(_ record: PartitionRecord) -> String {
        let state = record.operationState ?? (record.phase == .requested ? "PENDING" : "RUNNING")
        guard let progress = record.progress else { return state }
        return "\(state), \(Int(progress.rounded()))%"
    }

    static func list(_ paths: [String]) -> String {
        paths.count <= 5 ? paths.joined(separator: ", ") : paths.prefix(5).joined(separator: ", ") + ", …"
    }
}
