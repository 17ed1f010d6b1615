import Foundation
import SegSyncVocabulary

/// Renders a ``Plan`` for people (aligned text) and for machines (versioned JSON).
public enum PlanRenderer {
    public static let jsonFormatVersion = MachineJSON.formatVersion

    /// The plan as aligned text; `paint` colours the symbols and the summary's counts.
    public static func text(_ plan: Plan, paint: Paint = .none) -> String {
        var lines: [String] = []
        let exportWidth = plan.actions.map(\.key.export.count).max() ?? 0
        let labelWidth = plan.actions.map(\.label.count).max() ?? 0
        var lastExport: String?
        for action in plan.actions {
            if let lastExport, lastExport != action.key.export { lines.append("") }
            lastExport = action.key.export
            let kind = action.kind.rawValue.padded(to: 9)
            let export = action.key.export.padded(to: exportWidth)
            let label = action.label.padded(to: labelWidth)
            lines.append("  " + paint.kind("\(action.kind.symbol) \(kind)", action.kind) + " \(export) \(label)   \(action.detail)")
        }
        if !plan.actions.isEmpty { lines.append("") }
        for note in plan.notes { lines.append("Note: \(note.message)") }
        lines.append(paint.enabled ? paint(summary(plan), plan.hasChanges || !plan.givenUp.isEmpty ? .bold : .green) : summary(plan))
        return lines.joined(separator: "\n") + "\n"
    }

    /// `Plan: 1 to create, 1 to resume, …; 54 up to date.` or `No changes: …`.
    public static func summary(_ plan: Plan) -> String {
        let upToDate = "\(plan.upToDate) partition\(plan.upToDate == 1 ? "" : "s") up to date"
        guard plan.hasChanges else {
            guard !plan.givenUp.isEmpty else { return "No changes: \(upToDate)." }
            let given = plan.givenUp.count
            return "Not converged: \(given) partition\(given == 1 ? "" : "s") given up after \(Planner.attemptLimit) failed exports (see the note), nothing else to do; \(upToDate)."
        }
        // Finalizing is there only when a window asks for it (`final` beyond `settle`).
        let parts = Plan.Kind.allCases.filter { ![.finalize, .adopt].contains($0) || plan.count($0) > 0 }.map { "\(plan.count($0)) to \($0.rawValue)" }
        return "Plan: \(parts.joined(separator: ", ")); \(plan.upToDate) up to date."
    }

    /// The versioned machine-readable document (`plan --json`, `plan --out`).
    public struct Document: Codable, Sendable, Equatable {
        /// The state a plan was made from (a saved plan is refused once it moved).
        public struct StateRef: Codable, Sendable, Equatable {
            public var lineage: String
            public var serial: Int
        }

        /// One action as the document lists it.
        public struct Action: Codable, Sendable, Equatable {
            public var action: Plan.Kind
            public var export: String
            public var start: String
            public var end: String
            public var label: String
            public var detail: String
            public var operationId: String?
            public var path: String?

            enum CodingKeys: String, CodingKey {
                case action, export, start, end, label, detail, path
                case operationId = "operation_id"
            }
        }

        public var formatVersion: Int
        public var now: String
        public var manifestSHA256: String
        public var state: StateRef
        public var actions: [Action]
        public var summary: [String: Int]
        public var notes: [String]
        public var targets: [String]
        public var prune: Bool
        public var retryFailed: Bool?
        /// Made with `--checksum` (absent in plans from before it was recorded).
        public var checksum: Bool?
        /// In-flight operations as refreshed from the API when the plan was made.
        public var refreshed: [RefreshedOperation]?

        enum CodingKeys: String, CodingKey {
            case now, state, actions, summary, notes, targets, prune, checksum, refreshed
            case retryFailed = "retry_failed"
            case formatVersion = "format_version"
            case manifestSHA256 = "manifest_sha256"
        }
    }

    /// The `plan --json` document (format_version 1), also what `plan --out` saves.
    public static func document(_ plan: Plan) -> Document {
        var summary = Dictionary(uniqueKeysWithValues: Plan.Kind.allCases.map { ($0.rawValue, plan.count($0)) })
        summary["up_to_date"] = plan.upToDate
        summary["adopt"] = plan.adoptions.count
        return Document(
            formatVersion: jsonFormatVersion,
            now: Timestamp.format(plan.now),
            manifestSHA256: plan.manifestSHA256,
            state: .init(lineage: plan.lineage, serial: plan.serial),
            actions: plan.actions.map {
                .init(action: $0.kind, export: $0.key.export, start: Timestamp.format($0.key.start),
                      end: Timestamp.format($0.end), label: $0.label, detail: $0.detail,
                      operationId: $0.operationId, path: $0.outputPath)
            },
            summary: summary,
            notes: plan.notes.map(\.message),
            targets: plan.options.targets,
            prune: plan.options.forcePrune,
            retryFailed: plan.options.retryFailed,
            checksum: plan.options.checksum,
            refreshed: plan.refreshed)
    }

    /// ``document(_:)``, pretty-printed with sorted keys.
    public static func json(_ plan: Plan) -> String {
        (try? MachineJSON.file(document(plan))) ?? "{}\n"
    }
}
