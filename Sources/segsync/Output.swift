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

/// How this run talks to people, decided once from the common flags and the environment
/// before the command runs (``OutputOptions``), read everywhere output is made.
struct Output: Sendable {
    var verbosity = Verbosity.normal
    /// Colour on standard output: at a terminal, unless `NO_COLOR` or `--no-color`.
    var paint = Paint.none
    /// Standard output is a terminal: progress redraws in place.
    var isTerminal = false

    private static let lock = NSLock()
    nonisolated(unsafe) private static var value = Output()

    nonisolated(unsafe) private static var entered: String?

    /// True the first time `directory` is asked for.
    static func enter(_ directory: String) -> Bool {
        lock.withLock {
            if entered == directory { return false }
            entered = directory
            return true
        }
    }

    static var current: Output {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }

    /// Decides colour the way the `NO_COLOR` convention (no-color.org) and `CLICOLOR_FORCE`
    /// (colour even into a pipe, for tests and pagers) describe; `NO_COLOR` wins.
    static func decide(verbosity: Verbosity, noColor: Bool, environment: [String: String], isTerminal: Bool) -> Output {
        let forced = environment["CLICOLOR_FORCE"].map { !$0.isEmpty && $0 != "0" } ?? false
        let banned = noColor || !(environment["NO_COLOR"] ?? "").isEmpty || environment["TERM"] == "dumb"
        return Output(verbosity: verbosity, paint: Paint(enabled: !banned && (isTerminal || forced)), isTerminal: isTerminal)
    }

    /// The terminal's width in columns (`COLUMNS` when set, else the window's), 80 otherwise.
    static var width: Int {
        if let columns = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), columns > 20 { return columns }
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 { return Int(size.ws_col) }
        return 80
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

    /// ArgumentParser validates every option group once, after parsing and before `run()`:
    /// the one moment every command passes through, so the settings are made here.
    func validate() throws {
        if quiet && verbose { throw ValidationError("-q/--quiet and -v/--verbose contradict each other; pass one.") }
        // The root command and the subcommand both carry these options, and ArgumentParser
        // gives both the same values: the folder is entered once.
        if let directory, Output.enter(directory) {
            guard FileManager.default.changeCurrentDirectoryPath(directory) else {
                throw ValidationError("-C \(directory): there is no such folder (or it cannot be entered).")
            }
        }
        let environment = ProcessInfo.processInfo.environment
        let verbosity: Verbosity = quiet ? .quiet : verbose || environment["SEGSYNC_DEBUG"] != nil ? .verbose : .normal
        Output.current = Output.decide(verbosity: verbosity, noColor: noColor, environment: environment,
                                       isTerminal: isatty(STDOUT_FILENO) != 0)
    }
}

/// A note (`note: …`) on standard error, unless `--quiet`.
func printNote(_ text: String) {
    if Output.current.verbosity > .quiet { printError("note: " + text) }
}

/// A warning on standard error (unless `--quiet`) and as a GitHub annotation.
func printWarning(_ text: String) {
    if Output.current.verbosity > .quiet { printError("warning: " + text) }
    Annotations.warning(text)
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
}

func printOut(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}
