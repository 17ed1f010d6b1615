import ArgumentParser
import Foundation
import FullStoryAPI
import FullStoryContract
import SegSync
import SegSyncStorage

/// Where a stream of text goes: a file descriptor of the process, or a buffer in tests.
public struct TextStream: Sendable {
    private let sink: @Sendable (String) -> Void

    public init(_ sink: @escaping @Sendable (String) -> Void) { self.sink = sink }

    /// Writes `text` as it is (no newline is added).
    public func write(_ text: String) { sink(text) }

    /// Standard output or error of this process, unbuffered (a line is out when written).
    public static func fileHandle(_ handle: FileHandle) -> TextStream {
        TextStream { handle.write(Data($0.utf8)) }
    }
}

/// Text a command wrote, kept for a test (or anyone running commands in-process) to read.
public final class TextBuffer: Sendable {
    private let data = Locked("")

    public init() {}

    public var stream: TextStream { TextStream { [data] text in data.withLock { $0 += text } } }
    public var text: String { data.value }
}

/// Everything a command touches outside its arguments: the environment, the working
/// directory, the clock, its three standard streams, the terminal, signals and how it
/// connects to the API. The executable runs commands with ``live()``; tests run them
/// in-process with their own (``SegSyncCLI/run(_:in:)``). No command reads
/// `ProcessInfo`, `Date()` or the process's working directory, or writes to a file
/// handle, except through this.
public struct CommandContext: Sendable {
    public var environment: [String: String]
    /// The absolute folder relative paths are resolved against (`-C` moves it).
    public var directory: String
    public var standardOutput: TextStream
    public var standardError: TextStream
    /// All of standard input (`state push -`).
    public var readStandardInput: @Sendable () -> Data
    public var now: @Sendable () -> Date
    /// Standard output is a terminal (colour, the live progress display).
    public var isTerminal: Bool
    /// The terminal window's width in columns, when there is one (`COLUMNS` wins).
    public var windowColumns: Int?
    /// Ctrl-C and SIGTERM interrupt `apply` (the process's signals; off in-process).
    public var handlesSignals: Bool
    /// Opens the API connection a run uses.
    public var connect: APIConnection.Factory
    /// Opens the state store a manifest names (the real engines by default).
    public var openStore: StoreOpener
    /// Opens the output a manifest names: its folder, or a bucket.
    public var openOutput: OutputOpener
    /// Decided from the common flags by ``configured(by:)``.
    var output = Output()

    public init(environment: [String: String], directory: String, standardOutput: TextStream, standardError: TextStream,
                readStandardInput: @escaping @Sendable () -> Data = { Data() }, now: @escaping @Sendable () -> Date = { Date() },
                isTerminal: Bool = false, windowColumns: Int? = nil, handlesSignals: Bool = false,
                connect: @escaping APIConnection.Factory = APIConnection.open,
                openStore: @escaping StoreOpener = StateBackend.opener,
                openOutput: @escaping OutputOpener = OutputBackend.opener) {
        self.environment = environment
        self.directory = directory
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.readStandardInput = readStandardInput
        self.now = now
        self.isTerminal = isTerminal
        self.windowColumns = windowColumns
        self.handlesSignals = handlesSignals
        self.connect = connect
        self.openStore = openStore
        self.openOutput = openOutput
    }

    /// This process: its environment, working directory, streams, terminal and signals.
    public static func live() -> CommandContext {
        var size = winsize()
        let columns = ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0 ? Int(size.ws_col) : nil
        return CommandContext(
            environment: ProcessInfo.processInfo.environment, directory: FileManager.default.currentDirectoryPath,
            standardOutput: .fileHandle(.standardOutput), standardError: .fileHandle(.standardError),
            readStandardInput: { FileHandle.standardInput.readDataToEndOfFile() },
            isTerminal: isatty(STDOUT_FILENO) != 0, windowColumns: columns, handlesSignals: true)
    }

    /// The context a command's body runs in: `-C` applied, verbosity and colour decided.
    func configured(by options: OutputOptions) throws -> CommandContext {
        var context = self
        if let folder = options.directory {
            let target = (path(folder) as NSString).standardizingPath
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory), isDirectory.boolValue,
                  access(target, X_OK) == 0 else {
                throw ValidationError("-C \(folder): there is no such folder (or it cannot be entered).")
            }
            context.directory = target
        }
        let verbosity: Verbosity = options.quiet ? .quiet
            : options.verbose || environment["SEGSYNC_DEBUG"] != nil ? .verbose : .normal
        context.output = Output.decide(verbosity: verbosity, noColor: options.noColor, environment: environment,
                                       isTerminal: isTerminal, windowColumns: windowColumns)
        return context
    }

    /// `path` resolved against ``directory``.
    public func path(_ path: String) -> String { Layout.absolute(path, in: directory) }

    // MARK: Writing

    func out(_ text: String) { standardOutput.write(text) }

    func error(_ text: String) { standardError.write(text.hasSuffix("\n") ? text : text + "\n") }

    /// A diagnostic, compiler-style, on standard error: errors always, warnings and
    /// notes unless `--quiet`. Errors and warnings are also GitHub annotations.
    func report(_ diagnostic: Diagnostic) {
        if diagnostic.severity == .error || output.verbosity > .quiet { error(diagnostic.description) }
        if diagnostic.severity != .note { Annotations(self).annotate(diagnostic) }
    }

    func report(_ diagnostics: [Diagnostic]) {
        for diagnostic in diagnostics { report(diagnostic) }
    }
}

/// A command that runs in a ``CommandContext``: every segsync subcommand.
protocol ContextCommand: AsyncParsableCommand {
    /// The common flags this command was given.
    var common: OutputOptions { get }
    /// The command's body, in a context ``CommandContext/configured(by:)`` its flags.
    func run(in context: CommandContext) async throws
}

extension ContextCommand {
    /// Run as the executable: this process's context.
    func run() async throws { try await start(in: .live()) }

    /// Applies the common flags to `context` and runs the command in it.
    func start(in context: CommandContext) async throws {
        try await run(in: context.configured(by: common))
    }
}

/// Parsing and running a segsync command line, in-process or as the executable.
public enum SegSyncCLI {
    /// Runs `segsync arguments…` in `context` and returns its exit status, writing what
    /// ArgumentParser would (help, version, completion scripts, `Error: …` lines) to the
    /// context's streams.
    public static func run(_ arguments: [String], in context: CommandContext) async -> Int32 {
        do {
            var command = try SegSyncCommand.parseAsRoot(arguments)
            if let command = command as? any ContextCommand {
                try await command.start(in: context)
            } else if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
            return ExitCodes.success
        } catch {
            let code = SegSyncCommand.exitCode(for: error)
            // Help is wrapped to the context's width, as ArgumentParser wraps it to the process's.
            let columns = context.environment["COLUMNS"].flatMap(Int.init) ?? context.windowColumns
            let message = SegSyncCommand.fullMessage(for: error, columns: columns)
            if !message.isEmpty {
                (code == .success ? context.standardOutput : context.standardError).write(message + "\n")
            }
            return code.rawValue
        }
    }

    /// The executable's entry point.
    public static func main() async -> Never {
        exit(await run(Array(CommandLine.arguments.dropFirst()), in: .live()))
    }
}
