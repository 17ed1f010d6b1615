import Foundation
import SegSync
import Testing

/// Runs the built `segsync` executable, as a user would.
enum CLI {
    /// The folder holding the built executables: next to the test bundle, or
    /// `$SEGSYNC_BIN_DIR` when the build lives elsewhere.
    static let binDirectory: String = {
        if let dir = ProcessInfo.processInfo.environment["SEGSYNC_BIN_DIR"] { return dir }
        let candidates = [
            (CommandLine.arguments[0] as NSString).deletingLastPathComponent,
            Bundle.main.bundlePath,
            ((#filePath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("../../.build/debug"),
        ]
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate + "/segsync") {
            return candidate
        }
        return candidates.last!
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `segsync args…` in `directory` and waits for it.
    static func run(_ arguments: [String], in directory: String, environment: [String: String] = [:], executable: String = "segsync") throws -> Result {
        let process = try start(arguments, in: directory, environment: environment, executable: executable)
        // Both pipes are drained at once: reading one to its end first would deadlock a
        // child that fills the other.
        let err = Drain(process.stderr.fileHandleForReading)
        let out = process.stdout.fileHandleForReading.readDataToEndOfFile()
        process.process.waitUntilExit()
        return Result(status: process.process.terminationStatus,
                      stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err.wait(), as: UTF8.self))
    }

    /// The folder's state, as `segsync state pull` prints it.
    static func state(_ directory: String, environment: [String: String] = [:]) throws -> State {
        let result = try run(["state", "pull"], in: directory, environment: environment)
        guard result.status == 0 else { throw SegSyncError("segsync state pull failed: \(result.stderr)") }
        return try StateJSON.decodeState(Data(result.stdout.utf8), source: "segsync state pull")
    }

    /// Replaces the folder's state with `segsync state push --force`.
    static func push(_ state: State, to directory: String, environment: [String: String] = [:]) throws {
        let file = directory + "/.segsync/pushed-state.json"
        try StateJSON.encoder.encode(state).write(to: URL(fileURLWithPath: file))
        let result = try run(["state", "push", "--force", file], in: directory, environment: environment)
        try? FileManager.default.removeItem(atPath: file)
        guard result.status == 0 else { throw SegSyncError("segsync state push failed: \(result.stderr)") }
    }

    /// Reads a pipe to its end on a thread of its own; ``text`` shows what came so far.
    final class Drain: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private let lock = NSLock()
        private var data = Data()

        init(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    lock.withLock { data.append(chunk) }
                }
                done.signal()
            }
        }

        /// What the pipe has carried so far.
        var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }

        func wait() -> Data {
            done.wait()
            return lock.withLock { data }
        }
    }

    struct Running {
        var process: Process
        var stdout: Pipe
        var stderr: Pipe
    }

    /// Runs `segsync args…` with its output discarded and returns its exit status and its
    /// peak resident memory in KiB (`wait4`'s `ru_maxrss`, this child's alone, so tests
    /// running alongside do not count).
    static func peakMemory(_ arguments: [String], executable: String = "segsync") throws -> (status: Int32, kibibytes: Int) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for descriptor: Int32 in [0, 1, 2] {
            posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", descriptor == 0 ? O_RDONLY : O_WRONLY, 0)
        }
        let argv = ([binDirectory + "/" + executable] + arguments).map { strdup($0) } + [nil]
        let envp = childEnvironment([:]).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0]!, &actions, nil, argv, envp)
        guard spawned == 0 else { throw SegSyncError("cannot start \(executable): \(String(cString: strerror(spawned))).") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { throw SegSyncError("wait4: \(String(cString: strerror(errno))).") }
        }
        return ((status >> 8) & 0xff, usage.ru_maxrss)
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
        try process.run()
        return Running(process: process, stdout: out, stderr: err)
    }
}

/// Waits for something another process makes happen, checking every 50 ms. `timeout`
/// only bounds a test whose event never comes; nothing asserts how long it took.
func waitUntil(timeout: TimeInterval = 60, _ happened: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while !happened() {
        guard Date() < deadline else { return false }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return true
}
