import Foundation
import SegSyncVocabulary
import Testing
import TestSupport
@testable import SegSync

/// A fixture of manifest + state + lockfile + folder that needs every kind of action.
struct PlanFixture {
    static let manifestText = """
        version: 1
        prune: true
        exports:
          - name: checkout-events
            segment: checkout_abandoners
            type: events
            format: csv
            window: { every: 6h, last: 1d, settle: 2h }
          - name: everyone-daily
            segment: everyone
            type: individuals
            decompress: true
            window: { every: 1d, last: 5d, settle: 24h }
        """
    static let now = Timestamp.parse("2026-11-28T00:00:00Z")!

    let folder: TemporaryFolder
    let manifest: Manifest
    var state = State(lineage: "11111111-2222-3333-4444-555555555555", serial: 7)
    var lockfile = Lockfile()

    init() throws {
        folder = try TemporaryFolder()
        manifest = ManifestLoader.decode(Self.manifestText, file: "segsync.yaml").0!
        let checkout = manifest.export(named: "checkout-events")!
        let everyone = manifest.export(named: "everyone-daily")!
        let hourly = try DesiredPartitions.partitions(of: checkout, dialect: .seed, now: Self.now)
        let daily = try DesiredPartitions.partitions(of: everyone, dialect: .seed, now: Self.now)

        // checkout-events: up to date, running, completed, (missing → create)
        try downloaded(hourly[0], checkout, content: "a,b\n")
        record(hourly[1], checkout, phase: .running) { $0.operationId = "9f2c41d0aa"; $0.operationState = "RUNNING"; $0.progress = 40 }
        record(hourly[2], checkout, phase: .completed) { $0.operationId = "71aa0c3e55" }
        // everyone-daily: corrupted, format changed, failed, adopted from the lockfile, deleted
        try downloaded(daily[0], everyone, content: "[1]")
        try folder.write("exports/" + Layout.relativePath(for: daily[0], export: everyone), "[2]")
        var old = everyone
        old.format = .csv
        try downloaded(daily[1], old, content: "x", fingerprint: "0ld")
        record(daily[2], everyone, phase: .failed) { $0.attempts = 1; $0.lastError = "the operation failed" }
        let adoptedPath = Layout.relativePath(for: daily[3], export: everyone)
        try folder.write("exports/" + adoptedPath, "[4]")
        lockfile.entries.append(Lockfile.Entry(
            path: adoptedPath, sha256: SHA256Hex.of("[4]"), bytes: 3, export: everyone.name, segment: everyone.segment,
            type: everyone.type, format: everyone.format, start: daily[3].start, end: daily[3].end, fingerprint: daily[3].fingerprint))
        try downloaded(daily[4], everyone, content: "[5]")
        try FileManager.default.removeItem(atPath: folder.path + "/exports/" + Layout.relativePath(for: daily[4], export: everyone))
        // An export no longer declared, a stranger's file and a leftover download.
        let gone = Partition(export: "old-export", start: Timestamp.parse("2026-10-01T00:00:00Z")!, end: Timestamp.parse("2026-10-02T00:00:00Z")!, label: "2026-10-01", fingerprint: "f")
        var goneSpec = everyone
        goneSpec.name = "old-export"
        try downloaded(gone, goneSpec, content: "old")
        try folder.write("exports/notes.txt", "mine")
        try folder.write("exports/everyone-daily/2026-11-27.json.partial", "half")
    }

    mutating func record(_ partition: Partition, _ spec: ExportSpec, phase: Phase, fingerprint: String? = nil, _ edit: (inout PartitionRecord) -> Void = { _ in }) {
        var record = PartitionRecord(partition: partition, parameters: ExportParameters(spec, dialect: .seed, endpoint: APISettings.defaultEndpoint), phase: phase, now: Self.now)
        record.attempts = 1
        if let fingerprint { record.fingerprint = fingerprint }
        edit(&record)
        state[partition.key] = record
    }

    mutating func downloaded(_ partition: Partition, _ spec: ExportSpec, content: String, fingerprint: String? = nil) throws {
        let path = Layout.relativePath(for: partition, export: spec)
        try folder.write("exports/" + path, content)
        record(partition, spec, phase: .downloaded, fingerprint: fingerprint) {
            $0.operationId = "op-\(partition.label)"
            $0.output = OutputRecord(path: path, bytes: Int64(content.utf8.count), sha256: SHA256Hex.of(content))
        }
    }

    func plan(_ options: Planner.Options = .init(), manifest: Manifest? = nil) throws -> Plan {
        let observed = ObservedFiles.scan(directory: folder.path + "/exports", expected: Planner.expectedFiles(state: state, lockfile: lockfile), depth: .quick)
        return try Planner.plan(manifest: manifest ?? self.manifest, state: state, lockfile: lockfile, observed: observed, now: Self.now, options: options)
    }
}

@Suite(.timeLimit(.minutes(2))) struct PlannerTests {
    @Test("golden text: every action, grouped by export, with notes and the summary")
    func goldenText() throws {
        let plan = try PlanFixture().plan()
        #expect(PlanRenderer.text(plan) == """
              ~ resume    checkout-events 2026-11-27T00:00Z   op 9f2c41d0aa (RUNNING, 40%)
              ↓ download  checkout-events 2026-11-27T06:00Z   op 71aa0c3e55 (COMPLETED)
              + create    checkout-events 2026-11-27T12:00Z   events csv

              ! repair    everyone-daily  2026-11-22          checksum mismatch
              ± replace   everyone-daily  2026-11-23          format changed csv → json
              + create    everyone-daily  2026-11-24          individuals json (retry; last attempt failed: the operation failed)
              ! repair    everyone-daily  2026-11-26          file missing

              - prune     old-export      2026-10-01          no longer declared

            Note: 1 file in the output folder was not written by segsync and is left alone: notes.txt.
            Note: 1 unfinished download (.partial) will be removed by apply: everyone-daily/2026-11-27.json.partial.
            Plan: 2 to create, 1 to resume, 1 to download, 2 to repair, 1 to replace, 1 to prune; 2 up to date.

            """)
        #expect(plan.adoptions.map(\.path) == ["everyone-daily/2026-11-25.json"])
    }

    @Test("golden JSON: a versioned document with the state's lineage and serial")
    func goldenJSON() throws {
        let fixture = try PlanFixture()
        let plan = try fixture.plan(.init(targets: ["checkout-events"]))
        #expect(PlanRenderer.json(plan) == """
            {
              "actions" : [
                {
                  "action" : "resume",
                  "detail" : "op 9f2c41d0aa (RUNNING, 40%)",
                  "end" : "2026-11-27T06:00:00Z",
                  "export" : "checkout-events",
                  "label" : "2026-11-27T00:00Z",
                  "operation_id" : "9f2c41d0aa",
                  "path" : "checkout-events/2026-11-27T00-00Z.csv.gz",
                  "start" : "2026-11-27T00:00:00Z"
                },
                {
                  "action" : "download",
                  "detail" : "op 71aa0c3e55 (COMPLETED)",
                  "end" : "2026-11-27T12:00:00Z",
                  "export" : "checkout-events",
                  "label" : "2026-11-27T06:00Z",
                  "operation_id" : "71aa0c3e55",
                  "path" : "checkout-events/2026-11-27T06-00Z.csv.gz",
                  "start" : "2026-11-27T06:00:00Z"
                },
                {
                  "action" : "create",
                  "detail" : "events csv",
                  "end" : "2026-11-27T18:00:00Z",
                  "export" : "checkout-events",
                  "label" : "2026-11-27T12:00Z",
                  "path" : "checkout-events/2026-11-27T12-00Z.csv.gz",
                  "start" : "2026-11-27T12:00:00Z"
                }
              ],
              "checksum" : false,
              "format_version" : 1,
              "manifest_sha256" : "\(fixture.manifest.sha256)",
              "notes" : [
                "1 file in the output folder was not written by segsync and is left alone: notes.txt.",
                "1 unfinished download (.partial) will be removed by apply: everyone-daily/2026-11-27.json.partial."
              ],
              "now" : "2026-11-28T00:00:00Z",
              "prune" : false,
              "refreshed" : [

              ],
              "retry_failed" : false,
              "state" : {
                "lineage" : "11111111-2222-3333-4444-555555555555",
                "serial" : 7
              },
              "summary" : {
                "adopt" : 0,
                "create" : 1,
                "download" : 1,
                "finalize" : 0,
                "prune" : 0,
                "repair" : 0,
                "replace" : 0,
                "resume" : 1,
                "up_to_date" : 1
              },
              "targets" : [
                "checkout-events"
              ]
            }

            """)
        let decoded = try JSONDecoder().decode(PlanRenderer.Document.self, from: Data(PlanRenderer.json(plan).utf8))
        #expect(decoded == PlanRenderer.document(plan))
    }

    @Test("the same inputs give the same plan")
    func deterministic() throws {
        let fixture = try PlanFixture()
        #expect(try fixture.plan() == fixture.plan())
    }

    @Test("without prune, undeclared outputs are kept and mentioned")
    func pruneDisabled() throws {
        let fixture = try PlanFixture()
        var manifest = fixture.manifest
        manifest.prune = false
        manifest.exports = manifest.exports.map { var e = $0; e.prune = false; return e }
        let plan = try fixture.plan(manifest: manifest)
        #expect(plan.count(.prune) == 0)
        #expect(plan.notes.first?.message.hasPrefix("1 recorded output belongs to exports no longer declared and is kept") == true)
        #expect(plan.notes.allSatisfy { $0.severity == .note && $0.file == nil })
        #expect(try fixture.plan(.init(forcePrune: true), manifest: manifest).count(.prune) == 1)
    }

    @Test("partitions that rolled out of the window are pruned when the export asks")
    func rollingPrune() throws {
        let fixture = try PlanFixture()
        let later = PlanFixture.now.addingTimeInterval(86_400)
        let observed = ObservedFiles.scan(directory: fixture.folder.path + "/exports", expected: Planner.expectedFiles(state: fixture.state, lockfile: fixture.lockfile), depth: .quick)
        let plan = try Planner.plan(manifest: fixture.manifest, state: fixture.state, lockfile: fixture.lockfile, observed: observed, now: later)
        let pruned = plan.actions.filter { $0.kind == .prune }.map { "\($0.key.export) \($0.label) \($0.detail)" }
        #expect(pruned == [
            "checkout-events 2026-11-26T18:00Z outside the window",
            "everyone-daily 2026-11-22 outside the window",
            "old-export 2026-10-01 no longer declared",
        ])
        // Without prune, the two kinds are told apart: leaving a rolling window is not
        // being undeclared.
        var keeping = fixture.manifest
        keeping.prune = false
        keeping.exports = keeping.exports.map { var e = $0; e.prune = false; return e }
        let kept = try Planner.plan(manifest: keeping, state: fixture.state, lockfile: fixture.lockfile, observed: observed, now: later)
        #expect(kept.notes.map(\.message).contains("2 recorded outputs have left their export's window and are kept; set prune: true on the export or pass --prune to delete them."))
        #expect(kept.notes.map(\.message).contains { $0.hasPrefix("1 recorded output belongs to exports no longer declared and is kept") })
    }

    @Test("operation ids are shown by a part that tells them apart; quoted failures do not stutter")
    func shortIDs() {
        #expect(Planner.short("eyJjIjoxNzk2MTEzODA3NDcyLCJkIjoyMDAwabc123") == "eyJj…abc123")
        #expect(Planner.short("9f2c41d0aa") == "9f2c41d0aa")
        #expect(Planner.short(nil) == "?")
        #expect(Planner.clause("The export failed (injected failure).") == "The export failed (injected failure)")
    }

    @Test("records without a file that nothing wants any more are forgotten, with --target only within the targets")
    func forgetStaleRecords() throws {
        var fixture = try PlanFixture()
        let old = Partition(export: "everyone-daily", start: Timestamp.parse("2026-01-01T00:00:00Z")!, end: Timestamp.parse("2026-01-02T00:00:00Z")!, label: "2026-01-01", fingerprint: "x")
        let gone = Partition(export: "removed", start: Timestamp.parse("2026-01-01T00:00:00Z")!, end: Timestamp.parse("2026-01-02T00:00:00Z")!, label: "2026-01-01", fingerprint: "y")
        let spec = fixture.manifest.export(named: "everyone-daily")!
        fixture.record(old, spec, phase: .failed)
        fixture.record(gone, spec, phase: .running) { $0.operationId = "abandoned" }
        #expect(try fixture.plan().forget == [gone.key, old.key].sorted())
        #expect(try fixture.plan(.init(targets: ["everyone-daily"])).forget == [old.key])
        #expect(try fixture.plan(.init(targets: ["checkout-events"])).forget.isEmpty)
    }

    @Test("an unknown --target is an error with a suggestion")
    func unknownTarget() throws {
        let fixture = try PlanFixture()
        #expect { try fixture.plan(.init(targets: ["checkout-event"])) } throws: {
            ($0 as? SegSyncError)?.message == "--target checkout-event: no export of that name in the manifest (did you mean 'checkout-events'?)."
        }
    }

    @Test("an empty state plans a create for every desired partition")
    func fromScratch() throws {
        let manifest = ManifestLoader.decode(PlanFixture.manifestText, file: "m").0!
        let plan = try Planner.plan(manifest: manifest, state: State(), lockfile: Lockfile(), observed: ObservedFiles(), now: PlanFixture.now)
        #expect(plan.actions.count == 9)
        #expect(plan.actions.allSatisfy { $0.kind == .create })
        #expect(PlanRenderer.summary(plan) == "Plan: 9 to create, 0 to resume, 0 to download, 0 to repair, 0 to replace, 0 to prune; 0 up to date.")
    }
}
