#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FileIO
import Foundation
import SegSync
import SegSyncVocabulary

/// An exclusive `flock` on `.segsync/lock`: the SQLite engine's run lock.
///
/// The kernel drops the lock when the process dies, so a crashed run never leaves a
/// stale lock behind. The file's content names the holder so the next run can say who.
final class FileRunLock: Sendable {
    private let fd: Int32
    let path: String

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    /// Takes the lock, polling for up to `timeout` while another process holds it; then
    /// throws, naming the holder.
    static func acquire(path: String, holder: LockHolder, timeout: Duration, name: String,
                        waiting: @Sendable (LockHolder?) -> Void) async throws -> FileRunLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SegSyncError("cannot open the run lock \(path): \(FileIO.Failure()).") }
        let deadline = ContinuousClock.now + timeout
        var said = false
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else {
                close(fd)
                throw SegSyncError("cannot lock \(path): \(FileIO.Failure(code)).")
            }
            guard ContinuousClock.now < deadline else {
                close(fd)
                throw lockTakenError(name, holder: readHolder(path), waited: timeout)
            }
            if !said {
                said = true
                waiting(readHolder(path))
            }
            do {
                try await Task.sleep(for: .milliseconds(100))
            } catch {
                close(fd)
                throw error
            }
        }
        let text = "pid=\(holder.pid)\nhost=\(holder.host)\ncommand=\(holder.command)\nstarted=\(Timestamp.format(holder.started))\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        return FileRunLock(fd: fd, path: path)
    }

    static func readHolder(_ path: String) -> LockHolder? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        guard let pid = fields["pid"].flatMap({ Int($0) }) else { return nil }
        return LockHolder(host: fields["host"] ?? "this host", pid: pid, command: fields["command"] ?? "?",
                          started: fields["started"].flatMap(Timestamp.parse) ?? Date(timeIntervalSince1970: 0))
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
