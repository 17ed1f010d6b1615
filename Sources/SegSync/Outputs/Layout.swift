import Foundation

/// Where everything lives for one manifest: the output folder, state, lock and lockfile.
public struct Layout: Sendable {
    public let manifestPath: String
    /// The folder holding the manifest; everything else is relative to it.
    public let root: String
    public let outputDirectory: String

    /// The folder relative paths in messages are relative to.
    public let workingDirectory: String

    /// `manifestPath` relative to `workingDirectory` (the process's when nil).
    public init(manifestPath: String, output: String, workingDirectory: String? = nil) {
        self.workingDirectory = workingDirectory ?? FileManager.default.currentDirectoryPath
        self.manifestPath = (Self.absolute(manifestPath, in: self.workingDirectory) as NSString).standardizingPath
        root = (self.manifestPath as NSString).deletingLastPathComponent
        outputDirectory = output.hasPrefix("/") ? output : ((root + "/" + output) as NSString).standardizingPath
    }

    public var stateDirectory: String { root + "/.segsync" }
    /// The SQLite engine's database.
    public var databasePath: String { stateDirectory + "/state.sqlite" }
    /// Where builds before the database stores kept state (imported once, then renamed).
    public var legacyStatePath: String { stateDirectory + "/state.json" }
    public var lockPath: String { stateDirectory + "/lock" }
    public var lockfilePath: String { root + "/segsync.lock" }

    /// `path` as it is, when absolute; else below `directory` (the process's working
    /// directory when nil). The one place a relative path is resolved.
    public static func absolute(_ path: String, in directory: String?) -> String {
        if path.hasPrefix("/") { return path }
        let base = directory ?? FileManager.default.currentDirectoryPath
        return base.hasSuffix("/") ? base + path : base + "/" + path
    }

    /// `path` relative to the working directory when it is below it (for messages).
    public func displayPath(_ path: String) -> String {
        let here = workingDirectory
        return path.hasPrefix(here + "/") ? String(path.dropFirst(here.count + 1)) : path
    }
    public var checksumsPath: String { outputDirectory + "/" + Checksums.fileName }

    /// `checkout-events/2026-11-27T13-00Z.csv.gz`: relative to the output folder, no
    /// characters that trouble other file systems.
    public static func relativePath(for partition: Partition, export: ExportSpec) -> String {
        "\(partition.export)/\(fileLabel(partition.label)).\(export.fileExtension)"
    }

    /// A partition's label as its file is named: `2026-11-27T13-00Z` (no `:`).
    public static func fileLabel(_ label: String) -> String {
        guard label.utf8.contains(UInt8(ascii: ":")) else { return label }
        return String(decoding: label.utf8.map { $0 == UInt8(ascii: ":") ? UInt8(ascii: "-") : $0 }, as: UTF8.self)
    }

    /// The absolute path of an output, refusing anything that could escape the output
    /// folder: `..`, absolute paths, and folders inside it that are symbolic links (a
    /// lockfile is input too, and so is the folder).
    public func absolutePath(ofOutput relative: String) throws -> String {
        let components = relative.split(separator: "/", omittingEmptySubsequences: false)
        guard !relative.isEmpty, !relative.hasPrefix("/"), !components.contains(".."), !components.contains(""), !components.contains(".") else {
            throw SegSyncError("refusing the output path '\(relative)': outputs must stay inside \(outputDirectory).")
        }
        var folder = outputDirectory
        for component in components.dropLast() {
            folder += "/" + component
            var info = stat()
            if lstat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK {
                throw SegSyncError("refusing to write through the symbolic link \(folder): outputs must stay inside \(outputDirectory).")
            }
        }
        return outputDirectory + "/" + relative
    }
}
