/// A place in a source file, 1-based, as editors and compilers count.
public struct SourceLocation: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public static func < (a: SourceLocation, b: SourceLocation) -> Bool {
        (a.line, a.column) < (b.line, b.column)
    }

    public var description: String { "\(line):\(column)" }
}

/// Something segsync tells a user about their input or their run, as a value: a problem
/// in the manifest, a warning while planning, a note on what a command did. Rendered
/// compiler-style, with the file and position when it has them:
/// `segsync.yaml:12:5: error: unknown key 'fromat' (did you mean 'format'?)`,
/// `note: waiting up to 10m for the lock on …`.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    /// How bad: an error stops the command; a warning is reported and the command goes
    /// on; a note is information (`--quiet` leaves warnings and notes out).
    public enum Severity: String, Sendable, Hashable {
        case error
        case warning
        case note
    }

    public var severity: Severity
    /// The file it is about (as the user named it), if any.
    public var file: String?
    public var location: SourceLocation?
    public var message: String

    public init(_ severity: Severity, file: String?, at location: SourceLocation?, _ message: String) {
        self.severity = severity
        self.file = file
        self.location = location
        self.message = message
    }

    /// A diagnostic about the run rather than a place in a file.
    public init(_ severity: Severity, _ message: String) {
        self.init(severity, file: nil, at: nil, message)
    }

    public var description: String {
        guard let file else { return "\(severity.rawValue): \(message)" }
        if let location {
            return "\(file):\(location.line):\(location.column): \(severity.rawValue): \(message)"
        }
        return "\(file): \(severity.rawValue): \(message)"
    }
}

/// Every problem found in one input, thrown together so a user fixes them all in one go.
public struct DiagnosticsError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics.sorted {
            ($0.file ?? "", $0.location ?? SourceLocation(line: 0, column: 0)) < ($1.file ?? "", $1.location ?? SourceLocation(line: 0, column: 0))
        }
    }

    public var errorCount: Int { diagnostics.filter { $0.severity == .error }.count }

    public var description: String {
        let count = errorCount
        let lines = diagnostics.map(\.description)
        return (lines + ["\(count) error\(count == 1 ? "" : "s") found; nothing was changed."]).joined(separator: "\n")
    }
}

/// Suggests the candidate closest to a misspelt word, if one is close enough to be a likely typo.
func nearest(to word: String, in candidates: some Sequence<String>) -> String? {
    let lowered = word.lowercased()
    var best: (String, Int)?
    for candidate in candidates {
        let distance = editDistance(lowered, candidate.lowercased())
        if best == nil || distance < best!.1 { best = (candidate, distance) }
    }
    guard let (candidate, distance) = best else { return nil }
    let allowed = max(1, min(3, candidate.count / 3))
    return distance <= allowed ? candidate : nil
}

/// Damerau–Levenshtein (optimal string alignment) distance: a swapped pair of letters,
/// the most common typo, counts as one edit.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
            }
        }
    }
    return d[a.count][b.count]
}

/// `(did you mean 'x'?)`, or nothing.
func didYouMean(_ word: String, _ candidates: some Sequence<String>) -> String {
    nearest(to: word, in: candidates).map { " (did you mean '\($0)'?)" } ?? ""
}
