import Foundation
import SegSyncVocabulary

/// `segsync status`: where every declared partition stands, from state alone.
public struct StatusReport: Sendable, Equatable {
    /// One desired partition's standing: a cell of the coverage strip.
    public enum Cell: String, Sendable, Equatable, CaseIterable, Encodable {
        case done, running, ready, failed, missing
        /// Done, from a provisional export: exported once more when its data is final.
        case provisional

        /// Distinct without colour, so a strip reads in a CI log too.
        public var symbol: Character {
            switch self {
            case .done: return "█"
            case .running: return "▒"
            case .ready: return "▓"
            case .failed: return "✗"
            case .missing: return "·"
            case .provisional: return "▄"
            }
        }

        var color: Paint.Color {
            switch self {
            case .done: return .green
            case .running: return .cyan
            case .ready: return .blue
            case .failed: return .red
            case .missing: return .yellow
            case .provisional: return .green
            }
        }
    }

    /// One export's counts: partitions desired, and how many are in each status.
    public struct Row: Sendable, Equatable {
        public var export: String
        public var desired = 0
        public var done = 0
        public var running = 0
        /// Finished on the server, not downloaded yet.
        public var ready = 0
        public var failed = 0
        public var missing = 0
        /// Of `done`, those whose output came from a provisional export.
        public var provisional = 0
        /// Each desired partition, oldest first, with its label and start.
        public var cells: [Cell] = []
        public var labels: [String] = []
        public var starts: [Date] = []
        /// Partitions in a local day (24 for `every: 1h`), or 7 for days and 1 for weeks:
        /// the unit a strip's rows are folded by.
        public var period = 1
    }

    /// An operation still running, as state last recorded it.
    public struct Running: Sendable, Equatable {
        public var export: String
        public var label: String
        public var operationId: String
        public var state: String
        public var progress: Double?
        public var since: Date
    }

    public var now: Date
    public var rows: [Row]
    public var running: [Running]

    /// Counts every desired partition of every export by its status in `state` (done
    /// only when its file came from the endpoint in force), and lists running operations.
    public static func make(manifest: Manifest, state: State, now: Date) throws -> StatusReport {
        var rows: [Row] = []
        var running: [Running] = []
        for export in manifest.exports {
            var row = Row(export: export.name)
            let every = export.window.every.nominalSeconds
            row.period = every >= 7 * 86_400 ? 1 : every >= 86_400 ? 7 : max(1, Int((86_400 / every).rounded()))
            for partition in try manifest.partitions(of: export, now: now) {
                row.desired += 1
                row.labels.append(partition.label)
                row.starts.append(partition.start)
                guard let record = state[partition.key], record.fingerprint == partition.fingerprint else {
                    row.missing += 1
                    row.cells.append(.missing)
                    continue
                }
                switch record.phase {
                case .downloaded:
                    row.done += 1
                    if Planner.isProvisional(exported: record.output?.exportedAt, end: partition.end, window: export.window, calendar: export.calendar) {
                        row.provisional += 1
                        row.cells.append(.provisional)
                    } else {
                        row.cells.append(.done)
                    }
                case .failed:
                    row.failed += 1
                    row.cells.append(.failed)
                case .completed:
                    row.ready += 1
                    row.cells.append(.ready)
                case .creating:
                    // A create sent whose answer is not recorded: in flight in a running
                    // apply, or lost (the next apply looks for its export).
                    row.running += 1
                    row.cells.append(.running)
                    running.append(Running(export: export.name, label: partition.label, operationId: "(no id yet)",
                                           state: "CREATING", progress: nil, since: record.intent?.sentAt ?? record.updatedAt))
                case .requested, .running:
                    row.running += 1
                    row.cells.append(.running)
                    running.append(Running(export: export.name, label: partition.label, operationId: record.operationId ?? "?",
                                           state: record.operationState ?? record.phase.rawValue.uppercased(),
                                           progress: record.progress, since: record.createdAt))
                }
            }
            rows.append(row)
        }
        return StatusReport(now: now, rows: rows, running: running)
    }

    /// The table, a coverage strip per export folded to `width` columns, the running
    /// operations and a final line.
    public func rendered(width: Int = 80, paint: Paint = .none, strips: Bool = true) -> String {
        let nameWidth = max(6, rows.map(\.export.count).max() ?? 0)
        func num(_ n: Int) -> String { String(repeating: " ", count: max(0, 8 - String(n).count)) + String(n) }
        var lines = ["\("EXPORT".padded(to: nameWidth))   DESIRED     DONE  RUNNING    READY   FAILED  MISSING"]
        for row in rows {
            lines.append("\(row.export.padded(to: nameWidth))  \(num(row.desired)) \(num(row.done)) \(num(row.running)) \(num(row.ready)) \(num(row.failed)) \(num(row.missing))")
        }
        if rows.contains(where: { $0.ready > 0 }) {
            lines.append("")
            lines.append("READY: finished on the server, not downloaded yet; the next apply downloads them without exporting again.")
        }
        if strips, rows.contains(where: { !$0.cells.isEmpty }) {
            lines.append("")
            for row in rows where !row.cells.isEmpty {
                lines.append(row.export)
                lines.append(contentsOf: strip(row, width: width, paint: paint))
            }
            // The provisional cell only where a window asks for finality beyond settle.
            let legend = Cell.allCases.filter { $0 != .provisional || rows.contains { $0.provisional > 0 } }
            lines.append(legend.map { paint(String($0.symbol), $0.color) + " " + $0.rawValue }.joined(separator: "  "))
        }
        if !running.isEmpty {
            lines.append("")
            lines.append("Running operations:")
            // A long list would push the table off the screen; --json lists every one.
            let shown = running.count > 12 ? 10 : running.count
            for op in running.prefix(shown) {
                let progress = op.progress.map { ", \(Int($0.rounded()))%" } ?? ""
                lines.append("  \(op.export) \(op.label)   op \(Planner.short(op.operationId)) (\(op.state)\(progress)) since \(Timestamp.format(op.since))")
            }
            if shown < running.count { lines.append("  … and \(running.count - shown) more (segsync status --json lists them all)") }
        }
        lines.append("")
        lines.append(summary)
        return lines.joined(separator: "\n") + "\n"
    }

    /// `Status: 86 of 96 partitions done, 4 running, 1 failed, 5 missing.`
    public var summary: String {
        let desired = rows.reduce(0) { $0 + $1.desired }
        func total(_ field: KeyPath<Row, Int>) -> Int { rows.reduce(0) { $0 + $1[keyPath: field] } }
        var parts = ["\(total(\.done)) of \(desired) partition\(desired == 1 ? "" : "s") done"]
        let provisional = total(\.provisional)
        if provisional > 0 { parts[0] += " (\(provisional) provisional, exported again once final)" }
        for (count, noun) in [(total(\.running), "running"), (total(\.ready), "ready to download"), (total(\.failed), "failed"), (total(\.missing), "missing")] where count > 0 {
            parts.append("\(count) \(noun)")
        }
        return "Status: " + parts.joined(separator: ", ") + "."
    }

    /// Rows of cells, each starting with its first partition's label; as many whole
    /// periods (days of hourly partitions, weeks of daily ones) per row as fit.
    func strip(_ row: Row, width: Int, paint: Paint) -> [String] {
        let labelWidth = row.labels.map(\.count).max() ?? 0
        let room = max(1, width - labelWidth - 3)
        let perRow = room >= row.period ? room / row.period * row.period : room
        var lines: [String] = []
        var index = 0
        while index < row.cells.count {
            let end = min(row.cells.count, index + perRow)
            var text = "  " + row.labels[index].padded(to: labelWidth) + " "
            var run = ""
            var current: Cell?
            for cell in row.cells[index..<end] {
                if cell != current, let current {
                    text += paint(run, current.color)
                    run = ""
                }
                current = cell
                run.append(cell.symbol)
            }
            if let current { text += paint(run, current.color) }
            lines.append(text)
            index = end
        }
        return lines
    }

    /// `segsync status --json`.
    public struct Document: MachineDocument, Sendable {
        /// One export: its counts and one cell per desired partition.
        public struct Export: Encodable, Sendable {
            /// One desired partition and its status.
            public struct PartitionCell: Encodable, Sendable {
                public var partition: String
                public var start: String
                public var status: Cell
            }

            public var name: String
            public var desired, done, running, ready, failed, missing: Int
            /// Of `done`, those from a provisional export.
            public var provisional: Int
            public var partitions: [PartitionCell]
        }

        /// A running operation, as in the text's list (all of them, not the first ten).
        public struct Operation: Encodable, Sendable {
            public var export: String
            public var partition: String
            public var operationId: String
            public var state: String
            public var percent: Double?
            public var since: String

            enum CodingKeys: String, CodingKey {
                case export, partition, state, percent, since
                case operationId = "operation_id"
            }
        }

        public var now: String
        public var exports: [Export]
        public var running: [Operation]

        enum CodingKeys: String, CodingKey {
            case now, exports, running
        }
    }

    public var document: Document {
        Document(
            now: Timestamp.format(now),
            exports: rows.map { row in
                .init(name: row.export, desired: row.desired, done: row.done, running: row.running, ready: row.ready,
                      failed: row.failed, missing: row.missing, provisional: row.provisional,
                      partitions: row.cells.indices.map { .init(partition: row.labels[$0], start: Timestamp.format(row.starts[$0]), status: row.cells[$0]) })
            },
            running: running.map { .init(export: $0.export, partition: $0.label, operationId: $0.operationId, state: $0.state,
                                         percent: $0.progress, since: Timestamp.format($0.since)) })
    }
}
