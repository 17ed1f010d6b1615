import Foundation

/// `segsync verify`: the output folder checked against `segsync.lock`, offline.
public struct Verification: Sendable, Equatable {
    public var checked: Int
    public var missing: [String]
    public var changed: [String: String]
    public var unknown: [String]
    /// Lines of `SHA256SUMS` that disagree with the lockfile.
    public var checksumsFileProblems: [String]

    public var ok: Bool { missing.isEmpty && changed.isEmpty && unknown.isEmpty && checksumsFileProblems.isEmpty }

    public static func run(layout: Layout) throws -> Verification {
        guard FileManager.default.fileExists(atPath: layout.lockfilePath) else {
            throw SegSyncError("there is no \(Lockfile.fileName) at \(layout.lockfilePath), so there is nothing to verify against; run segsync apply first.")
        }
        let lockfile = try Lockfile.load(path: layout.lockfilePath)
        var expected: [String: ExpectedFile] = [:]
        for entry in lockfile.entries {
            _ = try layout.absolutePath(ofOutput: entry.path)
            expected[entry.path] = ExpectedFile(bytes: entry.bytes, sha256: entry.sha256)
        }
        let observed = ObservedFiles.scan(directory: layout.outputDirectory, expected: expected, depth: .full)
        var result = Verification(checked: expected.count, missing: [], changed: [:], unknown: observed.unknownFiles + observed.partialFiles, checksumsFileProblems: [])
        for (path, problem) in observed.problems {
            if problem == .missing { result.missing.append(path) } else { result.changed[path] = problem.description }
        }
        result.missing.sort()
        if let text = try? String(contentsOfFile: layout.checksumsPath, encoding: .utf8) {
            let sums = try Checksums.parse(text)
            for entry in lockfile.entries where sums[entry.path] != entry.sha256 {
                result.checksumsFileProblems.append(sums[entry.path] == nil ? "\(entry.path) is not listed" : "\(entry.path) has another checksum")
            }
            for path in sums.keys where expected[path] == nil {
                result.checksumsFileProblems.append("\(path) is listed but not in segsync.lock")
            }
            result.checksumsFileProblems.sort()
        } else if !lockfile.entries.isEmpty {
            result.checksumsFileProblems.append("\(Checksums.fileName) is missing")
        }
        return result
    }

    public func rendered(outputDirectory: String) -> String {
        var lines: [String] = []
        for path in missing { lines.append("missing  \(path)") }
        for path in changed.keys.sorted() { lines.append("changed  \(path)   \(changed[path]!)") }
        for path in unknown { lines.append("unknown  \(path)   not written by segsync") }
        for problem in checksumsFileProblems { lines.append("sums     \(problem)") }
        if ok {
            lines.append("OK: \(checked) file\(checked == 1 ? "" : "s") in \(outputDirectory) match segsync.lock.")
        } else {
            let bad = missing.count + changed.count
            lines.append("FAILED: \(bad) of \(checked) recorded file\(checked == 1 ? "" : "s") missing or changed, \(unknown.count) unknown file\(unknown.count == 1 ? "" : "s")\(checksumsFileProblems.isEmpty ? "" : ", SHA256SUMS disagrees").")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// `segsync status`: where every declared partition stands, from state alone.
public struct StatusReport: Sendable, Equatable {
    public struct Row: Sendable, Equatable {
        public var export: String
        public var desired = 0
        public var done = 0
        public var running = 0
        /// Finished on the server, not downloaded yet.
        public var ready = 0
        public var failed = 0
        public var missing = 0
    }

    public struct Running: Sendable, Equatable {
        public var export: String
        public var label: String
        public var operationId: String
        public var state: String
        public var progress: Double?
        public var since: Date
    }

    public var rows: [Row]
    public var running: [Running]

    public static func make(manifest: Manifest, state: State, now: Date) throws -> StatusReport {
        var rows: [Row] = []
        var running: [Running] = []
        for export in manifest.exports {
            var row = Row(export: export.name)
            for partition in try manifest.partitions(of: export, now: now) {
                row.desired += 1
                guard let record = state[partition.key], record.fingerprint == partition.fingerprint else {
                    row.missing += 1
                    continue
                }
                switch record.phase {
                case .downloaded: row.done += 1
                case .failed: row.failed += 1
                case .completed:
                    row.ready += 1
                case .requested, .running:
                    row.running += 1
                    running.append(Running(export: export.name, label: partition.label, operationId: record.operationId ?? "?",
                                           state: record.operationState ?? record.phase.rawValue.uppercased(),
                                           progress: record.progress, since: record.createdAt))
                }
            }
            rows.append(row)
        }
        return StatusReport(rows: rows, running: running)
    }

    public func rendered() -> String {
        let width = max(6, rows.map(\.export.count).max() ?? 0)
        func pad(_ text: String, _ n: Int) -> String { text.padding(toLength: n, withPad: " ", startingAt: 0) }
        func num(_ n: Int) -> String { String(repeating: " ", count: max(0, 8 - String(n).count)) + String(n) }
        var lines = ["\(pad("EXPORT", width))   DESIRED     DONE  RUNNING    READY   FAILED  MISSING"]
        for row in rows {
            lines.append("\(pad(row.export, width))  \(num(row.desired)) \(num(row.done)) \(num(row.running)) \(num(row.ready)) \(num(row.failed)) \(num(row.missing))")
        }
        if rows.contains(where: { $0.ready > 0 }) {
            lines.append("")
            lines.append("READY: finished on the server, not downloaded yet; the next apply downloads them without exporting again.")
        }
        if !running.isEmpty {
            lines.append("")
            lines.append("Running operations:")
            for op in running {
                let progress = op.progress.map { ", \(Int($0.rounded()))%" } ?? ""
                lines.append("  \(op.export) \(op.label)   op \(Planner.short(op.operationId)) (\(op.state)\(progress)) since \(Timestamp.format(op.since))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
