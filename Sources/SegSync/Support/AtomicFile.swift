#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The one way segsync replaces a file: write a temporary file in the same folder, fsync
/// it, rename it over the target, fsync the folder. A reader sees the old file or the
/// new one, never half of either, even across a power cut.
public enum AtomicFile {
    /// Writes `data` to `path` atomically. An existing file keeps its mode; a new one
    /// gets `newFileMode` (0600: state can name operations a user would rather not share).
    public static func write(_ data: some DataProtocol, to path: String, newFileMode: mode_t = 0o600) throws {
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        var info = stat()
        let mode: mode_t = lstat(path, &info) == 0 ? (info.st_mode & 0o7777) : newFileMode
        let temporary = "\(directory)/.\((path as NSString).lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SegSyncError("cannot write \(path): \(errnoText()).") }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            defer { close(fd) }
            _ = fchmod(fd, mode)  // the umask must not narrow or widen the mode we chose
            let bytes = Array(data)
            try bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = systemWrite(fd, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw SegSyncError("cannot write \(path): \(errnoText()).")
                    }
                    offset += written
                }
            }
            guard fsync(fd) == 0 else { throw SegSyncError("cannot flush \(path) to disk: \(errnoText()).") }
        }
        guard rename(temporary, path) == 0 else { throw SegSyncError("cannot replace \(path): \(errnoText()).") }
        renamed = true
        syncDirectory(directory)
    }

    /// Whether `path` names one of the temporary files `write` makes (left behind only
    /// when a process dies mid-write).
    public static func isTemporary(_ path: String) -> Bool {
        let name = (path as NSString).lastPathComponent
        return name.hasPrefix(".") && name.hasSuffix(".tmp") && name.split(separator: ".").count >= 4
    }

    /// Makes a rename or unlink in `directory` durable.
    public static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// Creates `path` and its parents (mode 0755) if missing, durably: a new folder is
    /// fsynced into its parent so the files renamed into it cannot vanish with it.
    public static func makeDirectory(_ path: String) throws {
        var info = stat()
        if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { return }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw SegSyncError("cannot create the folder \(path): \(error.localizedDescription)")
        }
        syncDirectory((path as NSString).deletingLastPathComponent)
    }
}

func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif
