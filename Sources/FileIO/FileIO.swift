#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The system calls segsync's file writers share — state, lockfile, `SHA256SUMS` and
/// downloads — written once, portably (Linux and Darwin), with the loops and retries
/// the calls need. Errors are the `errno` they failed with; callers turn them into
/// sentences that name the file.
public enum FileIO {
    /// An `errno` value and its text.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var code: Int32
        public init(_ code: Int32 = errno) { self.code = code }
        public var description: String { String(cString: strerror(code)) }
    }

    /// Writes every byte of `bytes` to `descriptor`: a short write continues where it
    /// stopped, an interrupted one is repeated.
    public static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        guard var next = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let written = systemWrite(descriptor, next, left)
            if written < 0 {
                if errno == EINTR { continue }
                throw Failure()
            }
            if written == 0 { throw Failure(EIO) }
            next += written
            left -= written
        }
    }

    /// Flushes `descriptor`'s data to the disk.
    public static func sync(_ descriptor: Int32) throws {
        while fsync(descriptor) != 0 {
            if errno != EINTR { throw Failure() }
        }
    }

    /// Makes a rename, creation or unlink in `directory` durable.
    public static func syncDirectory(_ directory: String) throws {
        let descriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure() }
        defer { close(descriptor) }
        try sync(descriptor)
    }

    /// A file's modification time in seconds since 1970, to the nanosecond.
    public static func modificationTime(_ info: stat) -> Double {
        #if canImport(Darwin)
        return Double(info.st_mtimespec.tv_sec) + Double(info.st_mtimespec.tv_nsec) / 1e9
        #else
        return Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
        #endif
    }

    private static func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        return Glibc.write(descriptor, bytes, count)
        #else
        return Darwin.write(descriptor, bytes, count)
        #endif
    }
}

extension FileIO {
    /// The three calls that put a written file durably in place — fsync the file, rename
    /// it over its final name, fsync the folder — as values: the system's, or in tests a
    /// set that records their order or fails one of them.
    public struct Placement: Sendable {
        public var sync: @Sendable (_ descriptor: Int32, _ path: String) throws -> Void
        public var rename: @Sendable (_ from: String, _ to: String) throws -> Void
        public var syncDirectory: @Sendable (_ directory: String) throws -> Void

        public init(sync: @escaping @Sendable (Int32, String) throws -> Void,
                    rename: @escaping @Sendable (String, String) throws -> Void,
                    syncDirectory: @escaping @Sendable (String) throws -> Void) {
            self.sync = sync
            self.rename = rename
            self.syncDirectory = syncDirectory
        }

        /// The system calls; errors are ``Failure``s with their `errno`.
        public static let system = Placement(
            sync: { descriptor, _ in try FileIO.sync(descriptor) },
            rename: { from, to in
                #if canImport(Glibc)
                guard Glibc.rename(from, to) == 0 else { throw Failure() }
                #else
                guard Darwin.rename(from, to) == 0 else { throw Failure() }
                #endif
            },
            syncDirectory: { try FileIO.syncDirectory($0) })
    }

    /// Device, inode, size and modification time to the nanosecond: changes whenever the
    /// file is rewritten or replaced. Nil when there is no such file.
    public static func identity(ofFileAt path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        #if canImport(Darwin)
        let mtime = "\(info.st_mtimespec.tv_sec).\(info.st_mtimespec.tv_nsec)"
        #else
        let mtime = "\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        #endif
        return "\(info.st_dev):\(info.st_ino):\(info.st_size):\(mtime)"
    }
}
