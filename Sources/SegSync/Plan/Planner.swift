import Foundation

/// Computes a ``Plan``: a pure function of (manifest, state, lockfile, observed files, now).
/// No I/O, no clock; the same inputs always give the same plan.
public enum Planner {
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
            expected[entry.path] = ExpectedFile(bytes: entry.bytes, sha256: entry.sha256)
        }
        for record in state.partitions.values where record.phase == .downloaded {
            if let output = record.output {
                expected[output.path] = ExpectedFile(bytes: output.bytes, sha256: output.sha256, modified: output.modified)
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

    public static func plan(
        manifest: Manifest, state: State, lockfile: Lockfile, observed: ObservedFiles, now: Date, options: Options = .init()
    ) throws -> Plan {
        try validate(targets: options.targets, in: manifest)
        let selected = manifest.exports.filter { options.targets.isEmpty || options.targets.contains($0.name) }
        var lockIndex: [PartitionKey: Lockfile.Entry] = [:]
        for entry in lockfile.entries { lockIndex[entry.key] = entry }

        var actions: [Plan.Action] = []
        var givenUp: [Plan.GivenUp] = []
        var adoptions: [Lockfile.Entry] = []
        var upToDate = 0
        var desiredKeys = Set<PartitionKey>()
        var keptUndeclared = 0
        var keptRolledOut = 0
        // Paths desired partitions will write: a recorded output at one of these (an old
        // partition with the same name, after a time zone change) is superseded, not pruned.
        let recorded = Dictionary(grouping: recordedOutputs(state: state, lockfile: lockfile), by: \.key.export)
        var claimedPaths = Set<String>()
        var desired: [String: [(partition: Partition, path: String)]] = [:]
        for export in manifest.exports {
            let partitions = try manifest.partitions(of: export, now: now).map { ($0, Layout.relativePath(for: $0, export: export)) }
            desired[export.name] = partitions
            for (_, path) in partitions { claimedPaths.insert(path) }
        }

        for export in selected {
            let parameters = ExportParameters(export, in: manifest)
            var exportActions: [Plan.Action] = []
            for (partition, path) in desired[export.name] ?? [] {
                desiredKeys.insert(partition.key)
                func action(_ kind: Plan.Kind, _ detail: String, operation: String? = nil, output: String? = nil) {
                    exportActions.append(Plan.Action(
                        kind: kind, key: partition.key, label: partition.label, end: partition.end,
                        detail: detail, operationId: operation, outputPath: output ?? path, partition: partition))
                }
                if let record = state[partition.key] {
                    if record.fingerprint != partition.fingerprint {
                        let reason = record.parameters.changes(to: parameters) ?? "time range changed"
                        switch record.phase {
                        case .downloaded: action(.replace, reason, output: path)
                        case .requested, .running, .completed: action(.replace, "\(reason); abandons op \(short(record.operationId))")
                        case .failed: action(.create, "\(export.type.rawValue) \(export.format.rawValue) (\(reason))")
                        }
                        continue
                    }
                    switch record.phase {
                    case .downloaded:
                        guard let output = record.output else {
                            action(.create, "\(export.type.rawValue) \(export.format.rawValue)")
                            continue
                        }
                        if let problem = observed.problems[output.path] {
                            action(.repair, problem.description, operation: record.operationId, output: output.path)
                        } else {
                            upToDate += 1
                        }
                    case .requested, .running:
                        action(.resume, "op \(short(record.operationId)) (\(progress(record)))", operation: record.operationId)
                    case .completed:
                        action(.download, "op \(short(record.operationId)) (COMPLETED)", operation: record.operationId)
                    case .failed:
                        let why = record.lastError.map { ": \(clause($0))" } ?? ""
                        if record.attempts >= attemptLimit, !options.retryFailed {
                            givenUp.append(Plan.GivenUp(key: partition.key, label: partition.label, attempts: record.attempts, lastError: record.lastError ?? "unknown error"))
                        } else {
                            action(.create, "\(export.type.rawValue) \(export.format.rawValue) (retry; last attempt failed\(why))")
                        }
                    }
                } else if let entry = lockIndex[partition.key] {
                    if entry.fingerprint != partition.fingerprint {
                        action(.replace, lockfileChange(entry, export, endpoint: manifest.api.endpoint) ?? "settings changed since segsync.lock was written", output: path)
                    } else if let problem = observed.problems[entry.path] {
                        action(.repair, problem.description, output: entry.path)
                    } else {
                        adoptions.append(entry)
                        upToDate += 1
                    }
                } else {
                    action(.create, "\(export.type.rawValue) \(export.format.rawValue)")
                }
            }

            // This export's recorded outputs that have rolled out of its window.
            let rolledOut = (recorded[export.name] ?? []).filter { !desiredKeys.contains($0.key) && !claimedPaths.contains($0.path) }
            for output in rolledOut.sorted(by: { $0.key < $1.key }) {
                if export.prune || options.forcePrune {
                    exportActions.append(pruneAction(output, reason: "outside the window"))
                } else {
                    keptRolledOut += 1
                }
            }
            exportActions.sort { ($0.key.start, $0.kind.rawValue) < ($1.key.start, $1.kind.rawValue) }
            actions.append(contentsOf: exportActions)
        }

        // Outputs of exports that are no longer declared at all (not with --target: it
        // narrows the run to the named exports).
        if options.targets.isEmpty {
            let declared = Set(manifest.exports.map(\.name))
            for output in recorded.keys.sorted().filter({ !declared.contains($0) }).flatMap({ recorded[$0]!.sorted { $0.key < $1.key } }) {
                if manifest.prune || options.forcePrune {
                    actions.append(pruneAction(output, reason: "no longer declared"))
                } else {
                    keptUndeclared += 1
                }
            }
        }

        // Records without a file that no declared partition wants any more (failed or
        // abandoned exports of old partitions): dropped by apply, never polled again.
        let selectedNames = Set(selected.map(\.name))
        let declaredNames = Set(manifest.exports.map(\.name))
        let forget = state.partitions.values.filter { record in
            record.output == nil && !desiredKeys.contains(record.key)
                && (selectedNames.contains(record.export) || (options.targets.isEmpty && !declaredNames.contains(record.export)))
        }.map(\.key).sorted()

        var notes: [String] = []
        if keptRolledOut > 0 {
            notes.append("\(keptRolledOut) recorded output\(keptRolledOut == 1 ? " has" : "s have") left \(keptRolledOut == 1 ? "its" : "their") export's window and \(keptRolledOut == 1 ? "is" : "are") kept; set prune: true on the export or pass --prune to delete \(keptRolledOut == 1 ? "it" : "them").")
        }
        if keptUndeclared > 0 {
            notes.append("\(keptUndeclared) recorded output\(keptUndeclared == 1 ? " belongs" : "s belong") to exports no longer declared and \(keptUndeclared == 1 ? "is" : "are") kept; set prune: true or pass --prune to delete \(keptUndeclared == 1 ? "it" : "them").")
        }
        if !givenUp.isEmpty {
            let list = givenUp.prefix(5).map { "\($0.key.export) \($0.label) (\($0.lastError))" }.joined(separator: "; ")
            notes.append("\(givenUp.count) partition\(givenUp.count == 1 ? "" : "s") failed \(attemptLimit) exports and \(givenUp.count == 1 ? "is" : "are") skipped: \(list)\(givenUp.count > 5 ? "; …" : ""). Fix the cause, then run apply --retry-failed.")
        }
        // Unrecorded files where a planned export will write (state and lockfile both
        // lost) are replaced; the rest are someone else's and left alone.
        var plannedPaths = Set<String>()
        if !observed.unknownFiles.isEmpty {
            for action in actions where action.kind != .prune { if let path = action.outputPath { plannedPaths.insert(path) } }
        }
        let replaced = observed.unknownFiles.filter { plannedPaths.contains($0) }
        let strangers = observed.unknownFiles.filter { !plannedPaths.contains($0) }
        if !replaced.isEmpty {
            notes.append("\(replaced.count) file\(replaced.count == 1 ? "" : "s") not recorded by segsync will be replaced by the planned export\(replaced.count == 1 ? "" : "s") of the same name: \(list(replaced)).")
        }
        if !strangers.isEmpty {
            notes.append("\(strangers.count) file\(strangers.count == 1 ? "" : "s") in the output folder \(strangers.count == 1 ? "was" : "were") not written by segsync and \(strangers.count == 1 ? "is" : "are") left alone: \(list(strangers)).")
        }
        if !observed.partialFiles.isEmpty {
            notes.append("\(observed.partialFiles.count) unfinished download\(observed.partialFiles.count == 1 ? "" : "s") (.partial) will be removed by apply: \(list(observed.partialFiles)).")
        }
        return Plan(
            actions: actions, upToDate: upToDate, adoptions: adoptions, givenUp: givenUp, forget: forget, notes: notes, now: now,
            lineage: state.lineage, serial: state.serial, manifestSHA256: manifest.sha256, options: options)
    }

    /// A recorded output: from state (preferred) or the lockfile.
    struct RecordedOutput {
        var key: PartitionKey
        var label: String
        var end: Date
        var path: String
        var operationId: String?
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

    static func pruneAction(_ output: RecordedOutput, reason: String) -> Plan.Action {
        Plan.Action(kind: .prune, key: output.key, label: output.label, end: output.end, detail: reason,
                    operationId: output.operationId, outputPath: output.path, partition: nil)
    }

    static func lockfileChange(_ entry: Lockfile.Entry, _ export: ExportSpec, endpoint: String) -> String? {
        var changes: [String] = []
        if let source = entry.source, source != endpoint { changes.append("data source changed \(source) → \(endpoint)") }
        if entry.segment != export.segment { changes.append("segment changed \(entry.segment) → \(export.segment)") }
        if entry.type != export.type { changes.append("type changed \(entry.type.rawValue) → \(export.type.rawValue)") }
        if entry.format != export.format { changes.append("format changed \(entry.format.rawValue) → \(export.format.rawValue)") }
        return changes.isEmpty ? nil : changes.joined(separator: "; ")
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
