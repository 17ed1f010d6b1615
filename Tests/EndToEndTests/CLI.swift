import Foundation
import SegSync
import SegSyncCLI
import Testing
import TestSupport

/// Runs segsync commands as a user would: in-process through ``SegSyncCLI`` with a
/// context of their own (a folder, an environment, captured output), or as the built
/// executable. `SEGSYNC_TEST_EXECUTABLE=1` sends every command through the executable.
enum CLI {
    /// The folder holding the built executables: next to the test bundle, or
    /// `$SEGSYNC_BIN_DIR` when the build lives elsewhere.
    static let binDirectory: String = {
        let here = FileManager.default.currentDirectoryPath
        func absolute(_ path: String) -> String { ((path.hasPrefix("/") ? path : here + "/" + path) as NSString).standardizingPath }
        if let dir = ProcessInfo.processInfo.environment["SEGSYNC_BIN_DIR"] { return absolute(dir) }
        let candidates = [
            (CommandLine.arguments[0] as NSString).deletingLastPathComponent,
            Bundle.main.bundlePath,
            ((#filePath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("../../.build/debug"),
        ]
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate + "/segsync") {
            return absolute(candidate)
        }
        return absolute(candidates.last!)
    }()

    /// Every command through the built executable, not in-process.
    static let alwaysExecutable = ProcessInfo.processInfo.environment["SEGSYNC_TEST_EXECUTABLE"] == "1"

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `segsync args…` in `directory`: in-process, unless another executable is named
    /// or ``alwaysExecutable``.
    static func run(_ arguments: [String], in directory: String, environment: [String: String] = [:],
                    executable: String = "segsync") async throws -> Result {
        guard executable == "segsync", !alwaysExecutable else {
            return try await exec(arguments, in: directory, environment: environment, executable: executable)
        }
        return await run(arguments, in: directory, environment: environment) { _ in }
    }

    /// Runs `segsync args…` in-process, always, in a context `adjust` may change (another
    /// state store, another API connection).
    static func run(_ arguments: [String], in directory: String, environment: [String: String] = [:],
                    adjust: (inout CommandContext) -> Void) async -> Result {
        let out = TextBuffer(), err = TextBuffer()
        var context = CommandContext(environment: childEnvironment(environment), directory: directory,
                                     standardOutput: out.stream, standardError: err.stream)
        adjust(&context)
        let status = await SegSyncCLI.run(arguments, in: context)
        return Result(status: status, stdout: out.text, stderr: err.text)
    }

    /// Runs the built executable `args…` in `directory` and waits for it, without holding
    /// a thread of the cooperative pool.
    static func exec(_ arguments: [String], in directory: String, environment: [String: String] = [:],
                     executable: String = "segsync") async throws -> Result {
        try await start(arguments, in: directory, environment: environment, executable: executable).result()
    }

    /// Runs a system tool (`sha256sum`, `chattr`) and returns its exit status, without
    /// holding a thread of the cooperative pool.
    static func system(_ tool: String, _ arguments: [String], in directory: String? = nil, quiet: Bool = false) async throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if quiet { process.standardError = FileHandle.nullDevice }
        let exited = Completion<Int32>()
        process.terminationHandler = { exited.finish($0.terminationStatus) }
        try process.run()
        return await exited.value()
    }

    /// The folder's state, as `segsync state pull` prints it.
    static func state(_ directory: String, environment: [String: String] = [:]) async throws -> State {
        let result = try await run(["state", "pull"], in: directory, environment: environment)
        guard result.status == 0 else { throw SegSyncError("segsync state pull failed: \(result.stderr)") }
        return try StateJSON.decodeState(Data(result.stdout.utf8), source: "segsync state pull")
    }

    /// Replaces the folder's state with `segsync state push --force`.
    static func push(_ state: State, to directory: String, environment: [String: String] = [:]) async throws {
        let file = directory + "/.segsync/pushed-state.json"
        try StateJSON.encoder.encode(state).write(to: URL(fileURLWithPath: file))
        let result = try await run(["state", "push", "--force", file], in: directory, environment: environment)
        try? FileManager.default.removeItem(atPath: file)
        guard result.status == 0 else { throw SegSyncError("segsync state push failed: \(result.stderr)") }
    }

    /// Reads a pipe to its end on a thread of its own; ``text`` shows what came so far.
    final class Drain: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        private let done = Completion<Data>()

        init(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    lock.withLock { data.append(chunk) }
                }
                done.finish(lock.withLock { data })
            }
        }

        /// What the pipe has carried so far.
        var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }

        /// Everything the pipe carried, once it is closed.
        func end() async -> Data { await done.value() }
    }

    /// A started child process.
    struct Running {
        var process: Process
        var stdout: Pipe
        var stderr: Pipe
        let exited: Completion<Int32>

        /// Its exit status, once it has exited.
        func exit() async -> Int32 { await exited.value() }

        /// Its exit status and all it wrote, once it has exited (both pipes drained at
        /// once: reading one to its end first would deadlock a child that fills the other).
        func result() async -> Result {
            let out = Drain(stdout.fileHandleForReading), err = Drain(stderr.fileHandleForReading)
            let status = await exit()
            return Result(status: status, stdout: String(decoding: await out.end(), as: UTF8.self),
                          stderr: String(decoding: await err.end(), as: UTF8.self))
        }
    }

    /// Runs the built `segsync args…` with its output discarded and returns its exit
    /// status and its peak resident memory in KiB: `wait4`'s `ru_maxrss` of that child
    /// alone, so tests running alongside do not count. `segsync-fixture --peak-memory`
    /// spawns it: spawned from this (large) process, Linux would report this process's
    /// high-water mark for the child.
    static func peakMemory(_ arguments: [String], executable: String = "segsync",
                           environment: [String: String] = [:]) async throws -> (status: Int32, kibibytes: Int) {
        let run = try await exec(["--peak-memory", binDirectory + "/" + executable] + arguments,
                                 in: NSTemporaryDirectory(), environment: environment, executable: "segsync-fixture")
        let fields = run.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        guard run.status == 0, fields.count == 2 else {
            throw SegSyncError("segsync-fixture --peak-memory failed (\(run.status)): \(run.stdout)\(run.stderr)")
        }
        return (Int32(fields[0]), fields[1])
    }

    /// The test process's environment without what would change what the executable
    /// prints (a CI runner's, a developer's shell), plus `environment`.
    static func childEnvironment(_ environment: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for variable in ["GITHUB_STEP_SUMMARY", "FULLSTORY_API_URL", "NO_COLOR", "CLICOLOR_FORCE", "COLUMNS", "SEGSYNC_DEBUG", "GITHUB_ACTIONS"] {
            env.removeValue(forKey: variable)
        }
        for (key, value) in environment { env[key] = value }
        return env
    }

    static func start(_ arguments: [String], in directory: String, environment: [String: String] = [:], executable: String = "segsync") throws -> Running {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binDirectory + "/" + executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.environment = childEnvironment(environment)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let exited = Completion<Int32>()
        process.terminationHandler = { exited.finish($0.terminationStatus) }
        try process.run()
        return Running(process: process, stdout: out, stderr: err, exited: exited)
    }
}
