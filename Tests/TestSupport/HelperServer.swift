import Foundation

/// A server a test starts beside itself (moto, a proxy): it never outlives the test
/// process, and it never holds the test runner's pipes.
///
/// Two ways a helper hangs a whole test run, both seen in CI:
/// - A child spawned without its own standard output inherits the test process's, a pipe
///   `swift test` reads to its end before it reaps the test process. A helper still alive
///   when the tests finish keeps that pipe open, and `swift test` waits forever.
/// - The signal mask is inherited across `exec`, and a process spawned from one of
///   Dispatch's threads starts with SIGTERM blocked (so does "ignore", from a test that
///   set it): `terminate()` does nothing, and a shell cannot even trap it.
///
/// So the helper runs under a small Python watchdog, its own output and the helper's
/// discarded, which unblocks every signal (its helper inherits that mask) and installs its
/// own SIGTERM handler, polls the test process every
/// half second (a zombie counts as gone: `kill -0` succeeds on one) and SIGKILLs the
/// helper when the test process is gone, when the helper exits, or on ``stop()``.
public final class HelperServer: Sendable {
    private let watchdog: Process

    /// Starts `command` (an executable and its arguments) under the watchdog.
    public init(_ command: [String], environment: [String: String]? = nil) throws {
        let process = Process()
        // The system's Python where there is one: a version manager's shim (pyenv) runs
        // a shell first, which would ignore a SIGTERM sent before Python has its handler.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", Self.watchdogScript] + command
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", Self.watchdogScript] + command
        }
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        watchdog = process
    }

    /// Whether the helper (its watchdog) is still running.
    public var isRunning: Bool { watchdog.isRunning }

    /// Kills the helper and its watchdog; returns at once. The SIGTERM is repeated until
    /// the watchdog is gone (for ten seconds): one sent before its handler is installed
    /// may have been ignored.
    public func stop() {
        guard watchdog.isRunning else { return }
        let watchdog = self.watchdog
        kill(watchdog.processIdentifier, SIGTERM)
        Task.detached {
            for _ in 0..<20 where watchdog.isRunning {
                try? await Task.sleep(for: .milliseconds(500))
                if watchdog.isRunning { kill(watchdog.processIdentifier, SIGTERM) }
            }
        }
    }

    deinit { stop() }

    static let watchdogScript = """
        import os, signal, subprocess, sys, time
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        parent = os.getppid()
        child = None
        def stop(*_):
            try:
                if child is not None:
                    child.kill()
                    child.wait(timeout=10)
            finally:
                os._exit(0)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        def alive(pid):
            try:
                with open("/proc/%d/stat" % pid) as stat:
                    return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
            except OSError:
                try:
                    os.kill(pid, 0)
                    return True
                except OSError:
                    return False
        while alive(parent) and child.poll() is None:
            time.sleep(0.5)
        stop()
        """
}
