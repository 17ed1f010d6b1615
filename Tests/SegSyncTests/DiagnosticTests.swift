import Testing
@testable import SegSync

/// Diagnostics are values with a severity and, when they have one, a place: rendered
/// compiler-style.
@Suite struct DiagnosticTests {
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
