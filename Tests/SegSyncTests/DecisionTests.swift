import Foundation
import SegSyncVocabulary
import Testing
@testable import SegSync

/// `Planner.decide` against its specification: a table of rules over every combination
/// of what state records, what the lockfile says, whether the fingerprint still matches,
/// what the folder holds, whether the output is provisional (`window.final`), and
/// `--retry-failed`.
@Suite(.timeLimit(.minutes(2))) struct DecisionTests {
    enum RecordState: CaseIterable, Sendable {
        case none, requested, running, completed, downloaded, downloadedWithoutOutput, failed, failedOut
        /// A create's intent with no answer recorded, against the seed API (no operations
        /// list) and against production (which lists them).
        case creating, creatingListable
    }
    enum LockState: CaseIterable, Sendable { case none, entry }
    enum Fingerprint: CaseIterable, Sendable { case same, changed }
    enum FileState: CaseIterable, Sendable { case intact, damaged }
    /// The recorded output's export: final; provisional with `end + final` still ahead;
    /// provisional with `end + final` passed.
    enum Finality: CaseIterable, Sendable { case final, provisional, due }
    enum Outcome: Sendable, Equatable { case create, resume, download, repair, replace, upToDate, adopt, givenUp, finalize, adoptLost }

    struct Case: Sendable, CustomTestStringConvertible {
        var record: RecordState
        var lock: LockState
        var fingerprint: Fingerprint
        var file: FileState
        var finality: Finality
        var retryFailed: Bool
        var testDescription: String { "\(record) lock:\(lock) \(fingerprint) \(file) \(finality)\(retryFailed ? " --retry-failed" : "")" }
    }

    /// One row of the specification; nil matches anything.
    struct Rule {
        var records: [RecordState]
        var lock: LockState?
        var fingerprint: Fingerprint?
        var file: FileState?
        var finality: [Finality]? = nil
        var retryFailed: Bool?
        var outcome: Outcome

        func matches(_ c: Case) -> Bool {
            records.contains(c.record) && (lock ?? c.lock) == c.lock && (fingerprint ?? c.fingerprint) == c.fingerprint
                && (file ?? c.file) == c.file && (finality ?? [c.finality]).contains(c.finality) && (retryFailed ?? c.retryFailed) == c.retryFailed
        }
    }

    /// The specification. A state record decides alone; the lockfile speaks only when
    /// state has no record.
    static let rules: [Rule] = [
        Rule(records: [.none], lock: LockState.none, outcome: .create),
        Rule(records: [.none], lock: .entry, fingerprint: .changed, outcome: .replace),
        Rule(records: [.none], lock: .entry, fingerprint: .same, file: .intact, finality: [.final, .provisional], outcome: .adopt),
        Rule(records: [.none], lock: .entry, fingerprint: .same, file: .intact, finality: [.due], outcome: .finalize),
        Rule(records: [.none], lock: .entry, fingerprint: .same, file: .damaged, outcome: .repair),
        Rule(records: [.downloaded, .downloadedWithoutOutput, .requested, .running, .completed], fingerprint: .changed, outcome: .replace),
        Rule(records: [.failed, .failedOut, .creating, .creatingListable], fingerprint: .changed, outcome: .create),
        Rule(records: [.creating], fingerprint: .same, outcome: .create),
        Rule(records: [.creatingListable], fingerprint: .same, outcome: .adoptLost),
        Rule(records: [.downloaded], fingerprint: .same, file: .intact, finality: [.final, .provisional], outcome: .upToDate),
        Rule(records: [.downloaded], fingerprint: .same, file: .intact, finality: [.due], outcome: .finalize),
        Rule(records: [.downloaded], fingerprint: .same, file: .damaged, outcome: .repair),
        Rule(records: [.downloadedWithoutOutput], fingerprint: .same, outcome: .create),
        Rule(records: [.requested, .running], fingerprint: .same, outcome: .resume),
        Rule(records: [.completed], fingerprint: .same, outcome: .download),
        Rule(records: [.failed], fingerprint: .same, outcome: .create),
        Rule(records: [.failedOut], fingerprint: .same, retryFailed: false, outcome: .givenUp),
        Rule(records: [.failedOut], fingerprint: .same, retryFailed: true, outcome: .create),
    ]

    static let cases: [Case] = RecordState.allCases.flatMap { record in
        LockState.allCases.flatMap { lock in
            Fingerprint.allCases.flatMap { fingerprint in
                FileState.allCases.flatMap { file in
                    Finality.allCases.flatMap { finality in
                        [false, true].map { Case(record: record, lock: lock, fingerprint: fingerprint, file: file, finality: finality, retryFailed: $0) }
                    }
                }
            }
        }
    }

    static let manifest = ManifestLoader.decode("""
        version: 1
        exports:
          - name: orders
            segment: big_spenders
            type: events
            format: csv
            window: { every: 1d, last: 3d, settle: 1d }
        """, file: "segsync.yaml").0!
    static let now = Timestamp.parse("2026-11-28T00:00:00Z")!

    /// The desired partition, and the record, lockfile entry and folder a case describes.
    /// The partition (2026-11-24) ends on the 25th; its output was exported a day later,
    /// as `settle: 1d` has it; `now` is the 28th. `final` is 1d (the output is final),
    /// 10d (provisional, final on 5 December) or 2d (provisional, final since the 27th).
    static func inputs(_ c: Case) throws -> (Planner.Desired, PartitionRecord?, Lockfile.Entry?, ObservedFiles) {
        var export = manifest.exports[0]
        export.window.final = switch c.finality {
        case .final: Span(days: 1)
        case .provisional: Span(days: 10)
        case .due: Span(days: 2)
        }
        let partition = try #require(try DesiredPartitions.partitions(of: export, dialect: .seed, now: now).first)
        var desired = Planner.Desired(partition: partition, path: Layout.relativePath(for: partition, export: export),
                                      export: export, parameters: ExportParameters(export, in: manifest))
        if c.record == .creatingListable { desired.parameters.dialect = .fullstory }
        #expect(Timestamp.format(partition.start) == "2026-11-24T00:00:00Z")
        let exported = partition.end.addingTimeInterval(86_400)
        let sent = now.addingTimeInterval(-250)
        let recordedPath = "orders/recorded.csv.gz"
        let fingerprint = c.fingerprint == .same ? partition.fingerprint : "an older fingerprint"
        let phase: Phase? = switch c.record {
        case .none: nil
        case .requested: .requested
        case .running: .running
        case .completed: .completed
        case .downloaded, .downloadedWithoutOutput: .downloaded
        case .failed, .failedOut: .failed
        case .creating, .creatingListable: .creating
        }
        let record = phase.map { phase in
            var record = PartitionRecord(partition: partition, parameters: desired.parameters, phase: phase, now: now)
            record.fingerprint = fingerprint
            record.operationId = "op-1"
            record.attempts = c.record == .failedOut ? Planner.attemptLimit : 1
            if phase == .failed { record.lastError = "the export failed." }
            if phase == .creating {
                record.operationId = nil
                record.intent = CreateIntent(sentAt: sent, timeout: 60)
            }
            if c.record == .downloaded {
                record.output = OutputRecord(path: recordedPath, bytes: 3, sha256: String(repeating: "a", count: 64), exportedAt: exported,
                                             contentSHA256: c.finality == .final ? nil : String(repeating: "c", count: 64))
            }
            return record
        }
        let entry = c.lock == .none ? nil : Lockfile.Entry(
            path: recordedPath, sha256: String(repeating: "a", count: 64), bytes: 3, export: export.name, segment: export.segment,
            type: export.type, format: c.fingerprint == .same ? export.format : .json, start: partition.start, end: partition.end,
            fingerprint: fingerprint,
            provisional: c.finality == .final ? nil : Lockfile.Provisional(exported: exported, contentSHA256: String(repeating: "c", count: 64)))
        let observed = ObservedFiles(problems: c.file == .damaged ? [recordedPath: .checksumMismatch] : [:])
        return (desired, record, entry, observed)
    }

    static func outcome(_ decision: Planner.Decision) -> Outcome? {
        switch decision {
        case .create: .create
        case .resume: .resume
        case .download: .download
        case .repair: .repair
        case .replace: .replace
        case .upToDate(let adopting): adopting == nil ? .upToDate : .adopt
        case .givenUp: .givenUp
        case .finalize: .finalize
        case .adopt: .adoptLost
        case .prune, .keep: nil
        }
    }

    @Test("the table is exhaustive and unambiguous: every combination matches exactly one rule")
    func tableCoversEveryCase() {
        #expect(Self.cases.count == 10 * 2 * 2 * 2 * 3 * 2)
        for c in Self.cases {
            let matching = Self.rules.filter { $0.matches(c) }
            #expect(matching.count == 1, "\(c.testDescription): \(matching.count) rules")
        }
    }

    @Test("decide follows the table", arguments: DecisionTests.cases)
    func decideFollowsTheTable(_ c: Case) throws {
        let (desired, record, entry, observed) = try Self.inputs(c)
        let decision = Planner.decide(desired: desired, record: record, lockEntry: entry, observed: observed,
                                      options: .init(retryFailed: c.retryFailed), now: Self.now)
        let expected = try #require(Self.rules.first { $0.matches(c) }).outcome
        #expect(Self.outcome(decision) == expected)
        // What each decision carries on into the plan.
        switch decision {
        case .resume(let operation, let detail), .download(let operation, let detail):
            #expect(operation == "op-1")
            #expect(detail.hasPrefix("op op-1 ("))
        case .repair(let problem, let operation, let output):
            #expect(problem == "checksum mismatch")
            #expect(output == "orders/recorded.csv.gz")  // the recorded file, not where a new one would go
            #expect(operation == (record == nil ? nil : "op-1"))
        case .replace(let reason):
            if record == nil {
                #expect(reason == "format changed json → csv")
            } else {
                #expect(reason.hasPrefix("time range changed"))
                #expect(reason.contains("abandons op op-1") == [.requested, .running, .completed].contains(record!.phase))
            }
        case .create(let detail):
            #expect(detail.hasPrefix("events csv"))
            if record?.phase == .failed, c.fingerprint == .same { #expect(detail == "events csv (retry; last attempt failed: the export failed)") }
            if record?.phase == .creating, c.fingerprint == .same { #expect(detail == "events csv (retry; the answer to an earlier create was lost)") }
        case .upToDate(let adopting):
            #expect(adopting == (record == nil ? entry : nil))  // state's record needs no adoption
        case .givenUp(let attempts, let lastError):
            #expect(attempts == Planner.attemptLimit)
            #expect(lastError == "the export failed.")
        case .finalize(let exported):
            #expect(exported == desired.partition.end.addingTimeInterval(86_400))
            #expect(Planner.finalizeDetail(exported: exported, now: Self.now) == "provisional, exported 2d ago")
        case .adopt(let sent):
            #expect(sent == Self.now.addingTimeInterval(-250))
            #expect(Planner.adoptDetail(sent: sent, now: Self.now)
                    == "awaiting adoption: the answer to a create sent 2026-11-27T23:55:50Z (4m10s ago) was lost")
        case .prune, .keep:
            Issue.record("a desired partition is never pruned or kept")
        }
    }

    @Test("a recorded output no desired partition claims is pruned only where the manifest or --prune says so",
          arguments: [(true, false, false), (false, true, false), (false, false, true), (false, false, false)])
    func recordedOutputs(exportPrunes: Bool, manifestPrunes: Bool, forcePrune: Bool) {
        var export = Self.manifest.exports[0]
        export.prune = exportPrunes
        let output = Planner.RecordedOutput(key: PartitionKey(export: export.name, start: Self.now), label: "2026-11-28",
                                            end: Self.now.addingTimeInterval(86_400), path: "orders/2026-11-28.csv.gz")
        let options = Planner.Options(forcePrune: forcePrune)
        let rolledOut = Planner.decide(recorded: output, declared: export, manifestPrunes: manifestPrunes, options: options)
        let undeclared = Planner.decide(recorded: output, declared: nil, manifestPrunes: manifestPrunes, options: options)
        #expect(rolledOut == (exportPrunes || forcePrune ? .prune(reason: "outside the window") : .keep))
        #expect(undeclared == (manifestPrunes || forcePrune ? .prune(reason: "no longer declared") : .keep))
    }
}
