import ArgumentParser
import Foundation
import SegSync

/// How much a run says.
enum Verbosity: Int, Sendable, Comparable {
    /// Errors and the final line only (`-q`).
    case quiet
    case normal
    /// Also retries, 429 waits, relinks, resumed downloads and every poll (`-v`, `SEGSYNC_DEBUG`).
    case verbose

    static func < (a: Verbosity, b: Verbosity) -> Bool { a.rawValue < b.rawValue }
}

/// How this run talks to people, decided once from the common flags and the context's
/// environment (``CommandContext/configured(by:)``) before the command's body runs.
struct Output: Sendable {
    var verbosity = Verbosity.normal
    /// Colour on standard output: at a terminal, unless `NO_COLOR` or `--no-color`.
    var paint = Paint.none
    /// Standard output is a terminal: progress redraws in place.
    var isTerminal = false
    /// The terminal's width in columns: `COLUMNS` when set, else the window's, else 80.
    var width = 80

    /// Decides colour the way the `NO_COLOR` convention (no-color.org) and `CLICOLOR_FORCE`
    /// (colour even into a pipe, for tests and pagers) describe; `NO_COLOR` wins.
    static func decide(verbosity: Verbosity, noColor: Bool, environment: [String: String], isTerminal: Bool,
                       windowColumns: Int? = nil) -> Output {
        let forced = environment["CLICOLOR_FORCE"].map { !$0.isEmpty && $0 != "0" } ?? false
        let banned = noColor || !(environment["NO_COLOR"] ?? "").isEmpty || environment["TERM"] == "dumb"
        let columns = environment["COLUMNS"].flatMap(Int.init).flatMap { $0 > 20 ? $0 : nil }
            ?? windowColumns.flatMap { $0 > 20 ? $0 : nil } ?? 80
        return Output(verbosity: verbosity, paint: Paint(enabled: !banned && (isTerminal || forced)),
                      isTerminal: isTerminal, width: columns)
    }
}

/// The flags every command shares: where to run, how much to say, and colour.
struct OutputOptions: ParsableArguments {
    @Option(name: [.customShort("C"), .customLong("chdir")],
            help: ArgumentHelp("Run as if segsync had been started in this folder (before -f is read).", valueName: "dir"))
    var directory: String?

    @Flag(name: .shortAndLong, help: "Print errors and the final line only.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Also print retries, 429 waits, relinks, resumed downloads and every poll (as SEGSYNC_DEBUG does).")
    var verbose = false

    @Flag(name: .customLong("no-color"), help: "No colour. Also off when NO_COLOR is set or output is not a terminal.")
    var noColor = false

    func validate() throws {
        if quiet && verbose { throw ValidationError("-q/--quiet and -v/--verbose contradict each other; pass one.") }
    }
}
