import ArgumentParser
import Foundation
import SegSync
import SegSyncStorage
import SegSyncVocabulary

/// The root command. Run it with ``SegSyncCLI/run(_:in:)`` (the executable's `main` does).
struct SegSyncCommand: AsyncParsableCommand {
    @OptionGroup var output: OutputOptions

    static let configuration = CommandConfiguration(
        commandName: "segsync",
        abstract: "Keep a folder or bucket in sync with declared FullStory segment exports.",
        discussion: Help.text(
            """
            Declare exports in segsync.yaml; `segsync plan` shows what is missing and \
            `segsync apply` creates, resumes and downloads until the folder converges.
            """,
            """
            Start with `segsync init` (or `segsync init --endpoint emulator` to try it without an \
            account). Every command takes -f PATH (a manifest, or a folder holding segsync.yaml), \
            -C DIR, -q, -v and --no-color. Shell completions: --generate-completion-script bash|zsh|fish.
            """,
            Help.environment("FULLSTORY_API_KEY", "FULLSTORY_API_URL", "SEGSYNC_DATABASE_URL", "SEGSYNC_STATE_TIMEOUT", "SEGSYNC_DEBUG", "NO_COLOR",
                             "CLICOLOR_FORCE", "COLUMNS", "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS"),
            Help.examples(
                "segsync init --endpoint emulator && segsync apply",
                "segsync plan --detailed-exitcode",
                "segsync apply --max-wait 45m",
                "segsync -C pipelines/fullstory status",
                "segsync --generate-completion-script zsh > ~/.zfunc/_segsync")),
        version: "0.1.0",
        subcommands: [InitCommand.self, ValidateCommand.self, PlanCommand.self, ApplyCommand.self, StatusCommand.self, VerifyCommand.self, SegmentsCommand.self, StateCommand.self])
}

/// Every exit status segsync uses. The README's table lists them; tests assert each.
enum ExitCodes {
    static let success: Int32 = 0
    /// An error; `validate`/`verify` found problems; a partition failed.
    static let failure: Int32 = 1
    /// `plan --detailed-exitcode`: the plan has changes (or partitions given up).
    static let changes: Int32 = 2
    /// `apply`: `--max-wait` ran out while operations were still running.
    static let incomplete: Int32 = 3
    /// A usage error: an unknown flag, a bad value (ArgumentParser's `validationFailure`, EX_USAGE).
    static let usage: Int32 = ExitCode.validationFailure.rawValue
    /// Interrupted by Ctrl-C or SIGTERM.
    static let interrupted: Int32 = 130
}

/// Options every command that reads a manifest shares (and the common output flags).
struct ManifestOptions: ParsableArguments {
    @Option(name: [.short, .customLong("manifest")],
            help: ArgumentHelp("The manifest to read, or a folder holding segsync.yaml.", valueName: "path"))
    var file: String = ManifestOptions.defaultName

    @OptionGroup var output: OutputOptions

    static let defaultName = "segsync.yaml"

    /// The manifest's path as given (relative to the context's folder, for messages):
    /// `-f DIR` means `DIR/segsync.yaml`.
    func path(in context: CommandContext) -> String { Self.resolve(file, in: context) }

    static func resolve(_ file: String, in context: CommandContext) -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: context.path(file), isDirectory: &isDirectory), isDirectory.boolValue {
            return (file as NSString).appendingPathComponent(defaultName)
        }
        return file
    }
}

/// Options of the commands that take the run lock.
struct LockOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Wait this long for another run's lock (like 90s or 10m) instead of failing at once.", valueName: "duration"))
    var lockTimeout: String = "0"

    func validate() throws {
        if Span.duration(lockTimeout) == nil {
            throw ValidationError("--lock-timeout \(lockTimeout) is not a duration; write it like 90s, 10m or 1h.")
        }
    }

    var timeout: Duration { Span.duration(lockTimeout) ?? .zero }
}

// What a command opens, the context opens for it, hands over, and closes on every path
// (as SwiftPM's `SwiftCommandState` does): no command opens or closes a store itself.
extension CommandContext {
    /// Runs `body` with `manifest`'s workspace under the run lock, taken for `command`
    /// (waiting as `locking` says), and closes it however `body` ends.
    func withWorkspace<T>(_ manifest: ManifestOptions, locking: LockOptions, command: String,
                          _ body: (Workspace) async throws -> T) async throws -> T {
        let workspace = try await Workspace.open(manifestPath: manifest.path(in: self), in: directory, command: command,
                                                 lockTimeout: locking.timeout, now: now(), environment: environment,
                                                 openStore: openStore, openOutput: openOutput, waiting: { report($0) })
        report(workspace.notes)
        return try await workspace.closing(body)
    }

    /// `manifest`'s state, read without the run lock and without writing (the store is
    /// opened read-only and closed before this returns), its notes reported.
    func readState(_ manifest: ManifestOptions) async throws -> Workspace.Reading {
        let reading = try await Workspace.read(manifestPath: manifest.path(in: self), in: directory,
                                               environment: environment, openStore: openStore)
        report(reading.notes)
        return reading
    }
}

/// Options of the commands that compute a plan.
struct PlanningOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Plan as if it were this instant (RFC 3339), for reproducible runs.", valueName: "time"))
    var now: String?

    @Option(name: .customLong("target"), help: ArgumentHelp("Only this export (repeatable).", valueName: "export"))
    var targets: [String] = []

    func instant(_ context: CommandContext) throws -> Date {
        guard let now else { return context.now() }
        guard let date = Timestamp.parse(now) else {
            throw ValidationError("--now \(now) is not an RFC 3339 time; write it like 2026-11-28T00:00:00Z.")
        }
        return date
    }
}

extension CommandContext {
    /// Runs a command body, turning manifest diagnostics into compiler-style lines on
    /// standard error and exit status 1.
    func reportingDiagnostics<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as DiagnosticsError {
            self.error(error.description)
            let annotations = Annotations(self)
            for diagnostic in error.diagnostics { annotations.annotate(diagnostic) }
            throw ExitCode(ExitCodes.failure)
        }
    }

    /// Prints the manifest's warnings, compiler-style, on standard error: those of the
    /// decoder and those that depend on the instant planned for.
    func printWarnings(_ manifest: Manifest, now: Date) {
        report(manifest.warnings + manifest.windowWarnings(now: now))
    }
}
