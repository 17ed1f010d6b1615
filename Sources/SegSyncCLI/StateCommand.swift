import ArgumentParser
import Foundation
import SegSync
import SegSyncStorage
import SegSyncVocabulary

struct StateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state",
        abstract: "Inspect state, forget partitions, and move state between stores.",
        discussion: """
            Partitions are addressed as EXPORT@PARTITION, the partition by its label as plan \
            and status show it (everyone-daily@2026-11-26, checkout-events@2026-11-27T12:00Z) \
            or by its start (everyone-daily@2026-11-26T00:00:00Z).

            Pull from one store and push into another to migrate, from SQLite to PostgreSQL say.

            Examples:
              segsync state list --target everyone-daily
              segsync state rm everyone-daily@2026-11-26
              segsync state pull > state.json    # then set state.backend: postgres in segsync.yaml
              segsync state push state.json

            """ + Help.environment("SEGSYNC_DATABASE_URL"),
        subcommands: [List.self, Show.self, Remove.self, Pull.self, Push.self])

    /// The state of `manifest`'s workspace, read without the run lock and without writing.
    static func read(_ manifest: ManifestOptions, in context: CommandContext) async throws -> State {
        try await context.reportingDiagnostics { try await context.readState(manifest) }.state
    }

    /// Rows of `state list`, sorted by export and start.
    static func sorted(_ state: State) -> [PartitionRecord] {
        state.partitions.values.sorted { ($0.export, $0.start) < ($1.export, $1.start) }
    }

    /// The records `addresses` name; an address that names none is an error listing them.
    static func resolve(_ addresses: [String], in state: State) throws -> [PartitionRecord] {
        var found: [PartitionRecord] = []
        var unknown: [String] = []
        for address in addresses {
            let parts = address.split(separator: "@", maxSplits: 1).map(String.init)
            let matches = state.partitions.values.filter { record in
                parts.count == 2 && record.export == parts[0]
                    && (record.label == parts[1] || Timestamp.format(record.start) == parts[1]
                        || Layout.fileLabel(record.label) == parts[1])
            }
            if matches.isEmpty { unknown.append(address) } else { found += matches }
        }
        if !unknown.isEmpty {
            let exports = Set(state.partitions.values.map(\.export)).sorted()
            let hint = exports.isEmpty ? "state has no partitions" : "state has partitions of \(exports.joined(separator: ", ")); `segsync state list` shows them"
            throw SegSyncError("no partition in state is \(unknown.joined(separator: ", ")) (write EXPORT@PARTITION, like \(exports.first ?? "everyone-daily")@2026-11-26); \(hint).")
        }
        return found
    }

    struct List: ContextCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the partitions in state with their phase, operation id and file.",
            discussion: Help.text(
                "Reads state without the run lock. --json prints a versioned document (format_version 1).",
                Help.environment("SEGSYNC_DATABASE_URL"),
                Help.examples("segsync state list", "segsync state list --target everyone-daily --json")))

        @OptionGroup var manifest: ManifestOptions

        @Flag(help: "Print a JSON document instead of a table.")
        var json = false

        @Option(name: .customLong("target"), help: ArgumentHelp("Only this export (repeatable).", valueName: "export"))
        var targets: [String] = []

        var common: OutputOptions { manifest.output }

        func run(in context: CommandContext) async throws {
            let state = try await StateCommand.read(manifest, in: context)
            let records = StateCommand.sorted(state).filter { targets.isEmpty || targets.contains($0.export) }
            try context.print(StateListing(records), json: json)
        }
    }

    struct Show: ContextCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show everything state records about partitions.",
            discussion: Help.text(Help.environment("SEGSYNC_DATABASE_URL"), Help.examples("segsync state show everyone-daily@2026-11-26")))

        @OptionGroup var manifest: ManifestOptions

        @Argument(help: ArgumentHelp("The partitions to show.", valueName: "export@partition"))
        var addresses: [String]

        var common: OutputOptions { manifest.output }

        func run(in context: CommandContext) async throws {
            let state = try await StateCommand.read(manifest, in: context)
            let records = try StateCommand.resolve(addresses, in: state)
            context.out(records.map(StateListing.details).joined(separator: "\n"))
        }
    }

    struct Remove: ContextCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm",
            abstract: "Forget partitions, so the next apply exports them again.",
            discussion: """
                Removes the partitions from state and from segsync.lock and SHA256SUMS; their files \
                stay on disk until the next apply replaces them. Takes the run lock.

                Examples:
                  segsync state rm everyone-daily@2026-11-26
                  segsync state rm checkout-events@2026-11-27T12:00Z checkout-events@2026-11-27T18:00Z
                """)

        @OptionGroup var manifest: ManifestOptions
        @OptionGroup var locking: LockOptions

        @Argument(help: ArgumentHelp("The partitions to forget.", valueName: "export@partition"))
        var addresses: [String]

        var common: OutputOptions { manifest.output }

        func run(in context: CommandContext) async throws {
            let removed = try await context.reportingDiagnostics {
                try await context.withWorkspace(manifest, locking: locking, command: "segsync state rm") { workspace in
                    let snapshot = try await workspace.snapshot()
                    let records = try StateCommand.resolve(addresses, in: snapshot.state)
                    let keys = Set(records.map(\.key))
                    try await workspace.store.commit(records.map { StateChange($0.key.description, nil) }.sorted { $0.key < $1.key })
                    let lockfile = Lockfile(entries: snapshot.lockfile.entries.filter { !keys.contains($0.key) })
                    if lockfile != snapshot.lockfile { try await lockfile.write(to: workspace.layout, output: workspace.output) }
                    return records
                }
            }
            for record in removed.sorted(by: { ($0.export, $0.start) < ($1.export, $1.start) }) where context.output.verbosity > .quiet {
                context.out("Removed \(record.export)@\(record.label)\(record.output.map { " (its file \($0.path) stays until the next apply)" } ?? "")\n")
            }
            context.out("Forgot \(removed.count) partition\(removed.count == 1 ? "" : "s"); the next apply exports \(removed.count == 1 ? "it" : "them") again.\n")
        }
    }

    struct Pull: ContextCommand {
        static let configuration = CommandConfiguration(
            commandName: "pull",
            abstract: "Print the whole state as JSON (format_version 1): the same state, the same bytes.",
            discussion: Help.text(
                "Reads state without the run lock. `segsync state push` reads the document back.",
                Help.environment("SEGSYNC_DATABASE_URL"),
                Help.examples("segsync state pull > state.json")))

        @OptionGroup var manifest: ManifestOptions

        var common: OutputOptions { manifest.output }

        func run(in context: CommandContext) async throws {
            let state = try await StateCommand.read(manifest, in: context)
            context.out(String(decoding: try StateJSON.encoder.encode(state), as: UTF8.self) + "\n")
        }
    }

    struct Push: ContextCommand {
        static let configuration = CommandConfiguration(
            commandName: "push",
            abstract: "Replace the state with a document `segsync state pull` printed.",
            discussion: """
                Refused when the document belongs to another state (a different lineage) or is \
                older than the state it would replace (a lower serial), unless --force. Also reads \
                the .segsync/state.json of earlier builds. Takes the run lock.

                Examples:
                  segsync state push state.json
                  segsync state pull -f old/ | segsync state push -

                """ + Help.environment("SEGSYNC_DATABASE_URL"))

        @OptionGroup var manifest: ManifestOptions
        @OptionGroup var locking: LockOptions

        @Argument(help: ArgumentHelp("The state document, or - for standard input.", valueName: "file"))
        var file: String

        @Flag(help: "Replace the state even when the document's lineage differs or its serial is lower.")
        var force = false

        var common: OutputOptions { manifest.output }

        func run(in context: CommandContext) async throws {
            let data = file == "-" ? context.readStandardInput() : FileManager.default.contents(atPath: context.path(file))
            guard let data else { throw ValidationError("cannot read \(file).") }
            let source = file == "-" ? "standard input" : file
            let pushed = try StateJSON.decodeState(data, source: source)
            try pushed.check(source: source)
            let name = try await context.reportingDiagnostics {
                try await context.withWorkspace(manifest, locking: locking, command: "segsync state push") { workspace in
                    let current = try await workspace.store.load()
                    if !force, !current.lineage.isEmpty {
                        if pushed.lineage != current.lineage {
                            throw SegSyncError("\(file) belongs to another state (lineage \(pushed.lineage)); \(workspace.store.name) has lineage \(current.lineage). Pass --force to replace it anyway.")
                        }
                        if pushed.serial < current.serial {
                            throw SegSyncError("\(file) is older than \(workspace.store.name) (serial \(pushed.serial) < \(current.serial)); pull again, or pass --force to replace it anyway.")
                        }
                    }
                    try await workspace.store.replace(with: pushed)
                    return workspace.store.name
                }
            }
            context.out("Pushed \(pushed.partitions.count) partition\(pushed.partitions.count == 1 ? "" : "s") (lineage \(pushed.lineage), serial \(pushed.serial)) into \(name).\n")
        }
    }
}

/// `segsync state list` and `show` output.
struct StateListing: CommandOutput {
    let records: [PartitionRecord]

    init(_ records: [PartitionRecord]) {
        self.records = records
    }

    struct Item: Encodable {
        var address: String
        var export: String
        var label: String
        var start: Date
        var end: Date
        var phase: String
        var operationId: String?
        var operationState: String?
        var attempts: Int
        var file: String?
        var sha256: String?
        var bytes: Int64?
        var lastError: String?
        /// For a file: false while it is provisional (exported again once its data is
        /// final), and when its export was made.
        var final: Bool?
        var exported: Date?

        enum CodingKeys: String, CodingKey {
            case address, export, label, start, end, phase, attempts, file, sha256, bytes, final, exported
            case operationId = "operation_id", operationState = "operation_state", lastError = "last_error"
        }
    }

    struct Document: MachineDocument {
        var partitions: [Item]
    }

    static func address(_ record: PartitionRecord) -> String { "\(record.export)@\(record.label)" }

    var document: Document {
        Document(partitions: records.map { record in
            Item(address: Self.address(record), export: record.export, label: record.label, start: record.start, end: record.end,
                 phase: record.phase.rawValue, operationId: record.operationId, operationState: record.operationState,
                 attempts: record.attempts, file: record.output?.path, sha256: record.output?.sha256, bytes: record.output?.bytes,
                 lastError: record.lastError, final: record.output.map { Lockfile.Provisional($0) == nil },
                 exported: record.output?.exportedAt)
        })
    }

    func text(_ output: Output) -> String { table() }

    func table() -> String {
        guard !records.isEmpty else { return "State has no partitions.\n" }
        let rows = records.map { record in
            [Self.address(record), record.phase.rawValue + (record.output.flatMap(Lockfile.Provisional.init) != nil ? " (provisional)" : ""),
             record.operationId.map { Planner.short($0) } ?? "-", record.output?.path ?? "-"]
        }
        let header = ["PARTITION", "PHASE", "OPERATION", "FILE"]
        let widths = (0..<header.count).map { column in (rows + [header]).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padded(to: widths[index] + 2)
            }.joined() + "\n"
        }
        return ([header] + rows).map(line).joined()
    }

    static func describe(_ source: OperationSource) -> String {
        switch source {
        case .created: "the create's answer"
        case .adopted: "FullStory's operations list (adopted: the create's answer was lost)"
        }
    }

    static func details(_ record: PartitionRecord) -> String {
        var lines: [(String, String)] = [
            ("partition", address(record)),
            ("start", Timestamp.format(record.start)),
            ("end", Timestamp.format(record.end)),
            ("phase", record.phase.rawValue),
            ("operation", record.operationId ?? "-"),
            ("id learned from", record.operationSource.map(Self.describe) ?? "-"),
            ("operation state", record.operationState ?? "-"),
            ("progress", record.progress.map { "\(Int($0))%" } ?? "-"),
            ("attempts", String(record.attempts)),
            ("fingerprint", record.fingerprint),
            ("segment", record.parameters.segment),
            ("type", record.parameters.type.rawValue),
            ("format", record.parameters.format.rawValue),
            ("timezone", record.parameters.timezone),
            ("data source", record.parameters.endpoint ?? "-"),
            ("created", Timestamp.format(record.createdAt)),
            ("updated", Timestamp.format(record.updatedAt)),
        ]
        if let output = record.output {
            lines += [("file", output.path), ("bytes", String(output.bytes)), ("sha256", output.sha256)]
            if let exported = output.exportedAt { lines.append(("exported", Timestamp.format(exported))) }
            if let provisional = Lockfile.Provisional(output) {
                lines.append(("final", "no: provisional, exported again once its data is final"))
                if let digest = provisional.contentSHA256 { lines.append(("content sha256", digest)) }
                if let rows = output.contentLines { lines.append(("content lines", String(rows))) }
            }
        }
        if let intent = record.intent {
            lines.append(("create sent", Timestamp.format(intent.sentAt)))
            lines.append(("create answered", intent.answeredAt.map { Timestamp.format($0) + " (unreadable)" } ?? "no answer"))
            lines.append(("awaiting", "adoption: the next apply looks for its export on FullStory before creating another"))
        }
        if let disowned = record.disowned, !disowned.isEmpty {
            lines.append(("disowned", disowned.joined(separator: ", ") + " (may be another's lost create's: never adopted)"))
        }
        if let error = record.lastError { lines.append(("last error", error)) }
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { "\($0.0.padded(to: width))  \($0.1)\n" }.joined()
    }
}
