#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FileIO
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
        var mode = newFileMode
        if lstat(path, &info) == 0 {
            // Replacing a link would turn it into a file with the link's 0777 mode (and
            // write somewhere the user did not point at): refuse, and say so.
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                throw SegSyncError("refusing to replace \(path): it is not a regular file (a symbolic link?); segsync writes only regular files. Move it aside and run again.")
            }
            mode = info.st_mode & 0o7777
        }
        let temporary = "\(directory)/.\((path as NSString).lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SegSyncError("cannot write \(path): \(errnoText()).") }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            defer { close(fd) }
            _ = fchmod(fd, mode)  // the umask must not narrow or widen the mode we chose
            let bytes = Array(data)
            do {
                try bytes.withUnsafeBytes { buffer in try FileIO.writeAll(fd, buffer) }
            } catch {
                throw SegSyncError("cannot write \(path): \(error).")
            }
            do { try FileIO.sync(fd) } catch { throw SegSyncError("cannot flush \(path) to disk: \(error).") }
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

    /// Makes a rename or unlink in `directory` durable. Best effort: some file systems
    /// cannot fsync a folder, and the data itself is already on disk.
    public static func syncDirectory(_ directory: String) {
        try? FileIO.syncDirectory(directory)
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
    FileIO.Failure(code).description
}
