import Foundation
import Testing
import TestSupport

/// The watchdog every helper server runs under (moto, the test proxy): what hung CI once
/// was a helper holding the test runner's output pipe and ignoring SIGTERM.
@Suite(.timeLimit(.minutes(1)))
struct HelperServerTests {
    /// The processes whose parent is `pid`.
    static func children(of pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { task in
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? "")
                .split(separator: " ").compactMap { Int32($0) }
        }
    }

    /// Where a process's descriptor `fd` points.
    static func target(_ pid: Int32, _ fd: Int) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")
    }

    static func commandLine(_ pid: Int32) -> [String] {
        ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").split(separator: "\0").map(String.init)
    }

    static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let end = stat.range(of: ")", options: .backwards) else { return false }
        return !stat[end.upperBound...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    @Test("a helper holds none of the test process's output, ignores no stop, and is killed with its watchdog")
    func helper() async throws {
        // Ignored here, as an in-process service may leave SIGTERM: the helper inherits it.
        let previous = signal(SIGTERM, SIG_IGN)
        defer { signal(SIGTERM, previous) }
        let server = try HelperServer(["sleep", "600"])
        signal(SIGTERM, previous)
        // Nothing announces the helper's start: waited for as other tests wait on a child.
        var found: (watchdog: Int32, helper: Int32)?
        _ = await waitUntil(timeout: 10) {
            for watchdog in Self.children(of: getpid()) {
                if let helper = Self.children(of: watchdog).first(where: { Self.commandLine($0) == ["sleep", "600"] }) {
                    found = (watchdog, helper)
                    return true
                }
            }
            return false
        }
        let (watchdog, helper) = try #require(found, "the watchdog and its helper did not start")
        for pid in [watchdog, helper] {
            for fd in [1, 2] { #expect(Self.target(pid, fd) == "/dev/null", "\(pid == watchdog ? "watchdog" : "helper") fd \(fd)") }
        }
        #expect(Self.isAlive(helper))
        server.stop()
        #expect(await waitUntil(timeout: 20) { !Self.isAlive(helper) }, "the helper outlived stop()")
        #expect(await waitUntil(timeout: 20) { !server.isRunning }, "the watchdog outlived stop()")
    }
}
