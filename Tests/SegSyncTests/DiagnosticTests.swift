import Testing
@testable import SegSync
import SegSyncVocabulary

/// Diagnostics are values with a severity and, when they have one, a place: rendered
/// compiler-style.
@Suite(.timeLimit(.minutes(2))) struct DiagnosticTests {
    @Test("rendered as a compiler does: file:line:col, file alone, or the severity alone")
    func rendering() {
        #expect(Diagnostic(.error, file: "segsync.yaml", at: SourceLocation(line: 12, column: 5), "unknown key 'fromat'").description
            == "segsync.yaml:12:5: error: unknown key 'fromat'")
        #expect(Diagnostic(.warning, file: "segsync.yaml", at: nil, "no exports").description == "segsync.yaml: warning: no exports")
        #expect(Diagnostic(.note, "waiting up to 10m for the lock").description == "note: waiting up to 10m for the lock")
        #expect(Diagnostic(.warning, "could not reach the API").description == "warning: could not reach the API")
    }

    @Test("an error lists its diagnostics by file and position, those without a file first, and counts the errors only")
    func ordering() {
        let error = DiagnosticsError([
            Diagnostic(.error, file: "b.yaml", at: SourceLocation(line: 1, column: 1), "third"),
            Diagnostic(.warning, file: "a.yaml", at: SourceLocation(line: 9, column: 2), "second"),
            Diagnostic(.error, file: "a.yaml", at: SourceLocation(line: 2, column: 7), "first"),
            Diagnostic(.note, "before all"),
        ])
        #expect(error.diagnostics.map(\.message) == ["before all", "first", "second", "third"])
        #expect(error.errorCount == 2)
        #expect(error.description.hasSuffix("2 errors found; nothing was changed."))
    }
}

/// What one GET of an operation does to its record during `plan`'s refresh.
@Suite(.timeLimit(.minutes(2))) struct RefreshUpdateTests {
    static let manifestText = """
        version: 1
        exports:
          - name: first
            segment: everyone
            type: events
            window: { every: 1d, last: 2d }
          - name: second
            segment: everyone
            type: individuals
            window: { every: 1d, last: 2d }
        """
    static let now = Timestamp.parse("2026-11-28T00:00:00Z")!

    func running(_ manifest: Manifest, _ name: String) throws -> PartitionRecord {
        let export = try #require(manifest.export(named: name))
        let partition = try #require(try DesiredPartitions.partitions(of: export, dialect: .seed, now: Self.now).first)
        var record = PartitionRecord(partition: partition, parameters: ExportParameters(export, in: manifest), phase: .running, now: Self.now)
        record.operationId = "op-1"
        return record
    }

    @Test("a failed GET keeps the record and warns at its export's line; a forgotten operation fails it")
    func failures() throws {
        let manifest = try #require(ManifestLoader.decode(Self.manifestText, file: "segsync.yaml").0)
        let record = try running(manifest, "second")
        let later = Self.now.addingTimeInterval(60)
        let (kept, warning) = Refresh.update(record, with: .failure(.serverError(status: 502, message: nil)), now: later, manifest: manifest)
        #expect(kept.phase == .running && kept.operationId == "op-1")
        let found = try #require(warning)
        #expect(found.severity == .warning && found.file == "segsync.yaml" && found.location?.line == 7)
        #expect(found.description.hasPrefix("segsync.yaml:7:5: warning: could not refresh second "))
        let (failed, none) = Refresh.update(record, with: .failure(.operationNotFound(operationID: "op-1")), now: later, manifest: manifest)
        #expect(failed.phase == .failed && none == nil && failed.lastError == "the API no longer knows operation op-1")
        let (_, positionless) = Refresh.update(record, with: .failure(.serverError(status: 502, message: nil)), now: later, manifest: nil)
        #expect(positionless?.file == nil)
    }
}
