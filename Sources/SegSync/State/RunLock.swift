#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// An exclusive `flock` on `.segsync/lock`, held for a whole run.
///
/// The kernel drops the lock when the process dies, so a crashed run never leaves a
/// stale lock behind. The file's content names the holder so the next run can say who.
public final class RunLock: Sendable {
    private let fd: Int32
    public let path: String

    /// Takes the lock or throws at once, naming the holder's pid, command and start time.
    public init(path: String, command: String, now: Date = Date()) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SegSyncError("cannot open the run lock \(path): \(errnoText()).") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            if code == EWOULDBLOCK {
                throw SegSyncError("another segsync run holds \(path) (\(Self.describe(holder))); wait for it to finish, then run again.")
            }
            throw SegSyncError("cannot lock \(path): \(errnoText(code)).")
        }
        let holder = "pid=\(getpid())\ncommand=\(command)\nstarted=\(Timestamp.format(now))\n"
        _ = ftruncate(fd, 0)
        _ = holder.withCString { pwrite(fd, $0, strlen($0), 0) }
        self.fd = fd
        self.path = path
    }

    static func describe(_ holder: String) -> String {
        var fields: [String: String] = [:]
        for line in holder.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        guard let pid = fields["pid"] else { return "holder unknown" }
        return "pid \(pid), '\(fields["command"] ?? "?")', started \(fields["started"] ?? "?")"
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
