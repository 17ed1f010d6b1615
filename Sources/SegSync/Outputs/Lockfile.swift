import FileIO
import Foundation
import SegSyncVocabulary

/// `segsync.lock`: every output with its checksum, deterministic so it diffs cleanly in a
/// pull request and can be committed. It holds only what determines the bytes (no
/// operation ids or times), so two runs of the same manifest write the same lockfile. Entries are sorted by path and rendered with a
/// fixed key order, so the same content is always the same bytes.
public struct Lockfile: Sendable, Equatable {
    public static let fileName = "segsync.lock"
    public static let currentVersion = 1

    /// One output file.
    public struct Entry: Codable, Sendable, Equatable {
        /// Relative to the output folder.
        public var path: String
        public var sha256: String
        public var bytes: Int64
        public var export: String
        public var segment: String
        public var type: ExportType
        public var format: ExportFormat
        public var start: Date
        public var end: Date
        public var fingerprint: String
        /// The endpoint that served the file (``APIEndpoint/origin(_:)``): production
        /// data and an emulator's synthetic data never pass for each other. Absent in
        /// lockfiles written before it was recorded.
        public var source: String?
        /// The ETag of the object when the output is in a bucket, as segsync wrote it:
        /// `verify` and a plan see a replaced object by it without reading the object.
        /// Absent for a folder's files.
        public var etag: String?
        /// `false` for a provisional output (exported before its partition's
        /// `end + final`), with when its export was made and its content's digest; absent
        /// for a final one.
        public var final: Bool?
        public var exported: Date?
        public var contentSHA256: String?

        enum CodingKeys: String, CodingKey {
            case path, sha256, bytes, export, segment, type, format, start, end, fingerprint, source, etag, final, exported
            case contentSHA256 = "content_sha256"
        }

        public init(path: String, sha256: String, bytes: Int64, export: String, segment: String, type: ExportType,
                    format: ExportFormat, start: Date, end: Date, fingerprint: String, source: String? = nil,
                    etag: String? = nil, provisional: Provisional? = nil) {
            self.source = source
            self.etag = etag
            if let provisional {
                final = false
                exported = provisional.exported
                contentSHA256 = provisional.contentSHA256
            }
            self.path = path
            self.sha256 = sha256
            self.bytes = bytes
            self.export = export
            self.segment = segment
            self.type = type
            self.format = format
            self.start = start
            self.end = end
            self.fingerprint = fingerprint
        }

        public var key: PartitionKey { PartitionKey(export: export, start: start) }

        /// What a provisional entry says of its export; nil for a final one.
        public var provisional: Provisional? {
            guard final == false, let exported else { return nil }
            return Provisional(exported: exported, contentSHA256: contentSHA256)
        }
    }

    /// A provisional output: when its export was made (by the run's clock) and the digest
    /// of its content after gunzip, which the final export is compared with.
    public struct Provisional: Sendable, Equatable {
        public var exported: Date
        public var contentSHA256: String?

        public init(exported: Date, contentSHA256: String?) {
            self.exported = exported
            self.contentSHA256 = contentSHA256
        }

        /// The provisional part of `output`, recorded in state: an output with a content
        /// digest is provisional (segsync keeps one for those only).
        public init?(_ output: OutputRecord) {
            guard let exported = output.exportedAt, let digest = output.contentSHA256 else { return nil }
            self.init(exported: exported, contentSHA256: digest)
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry] = []) {
        self.entries = entries.sorted { $0.path < $1.path }
    }

    /// The canonical bytes.
    public func rendered() -> String {
        var text = "{\n  \"version\": \(Self.currentVersion),\n  \"entries\": ["
        for (index, entry) in entries.sorted(by: { $0.path < $1.path }).enumerated() {
            text += index == 0 ? "\n" : ",\n"
            var fields: [(String, String)] = [
                ("path", jsonString(entry.path)),
                ("sha256", jsonString(entry.sha256)),
                ("bytes", String(entry.bytes)),
                ("export", jsonString(entry.export)),
                ("segment", jsonString(entry.segment)),
                ("type", jsonString(entry.type.rawValue)),
                ("format", jsonString(entry.format.rawValue)),
                ("start", jsonString(Timestamp.format(entry.start))),
                ("end", jsonString(Timestamp.format(entry.end))),
                ("fingerprint", jsonString(entry.fingerprint)),
            ]
            if let source = entry.source { fields.append(("source", jsonString(source))) }
            if let etag = entry.etag { fields.append(("etag", jsonString(etag))) }
            if let provisional = entry.provisional {
                fields.append(("final", "false"))
                fields.append(("exported", jsonString(Timestamp.format(provisional.exported))))
                if let digest = provisional.contentSHA256 { fields.append(("content_sha256", jsonString(digest))) }
            }
            text += "    {\n" + fields.map { "      \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n    }"
        }
        text += entries.isEmpty ? "]\n}\n" : "\n  ]\n}\n"
        return text
    }

    private struct File: Decodable {
        var version: Int
        var entries: [Entry]
    }

    /// Reads a lockfile; a missing one is empty, a damaged one an error naming the file.
    public static func load(path: String) throws -> Lockfile {
        guard let data = FileManager.default.contents(atPath: path) else {
            if FileManager.default.fileExists(atPath: path) {
                throw SegSyncError("cannot read the lockfile \(path); check its permissions.")
            }
            return Lockfile()
        }
        do {
            let file = try StateJSON.decoder.decode(File.self, from: data)
            guard file.version <= currentVersion else {
                throw SegSyncError("the lockfile \(path) has version \(file.version), newer than this segsync understands; upgrade segsync.")
            }
            // The lockfile is input (it may come from a pull request): a path that could
            // leave the output folder is refused before any file is read or written.
            for entry in file.entries where !Self.isConfined(entry.path) {
                throw SegSyncError("the lockfile \(path) lists the output '\(entry.path)', which is not a plain path inside the output folder; restore the lockfile from version control or delete it to rebuild it from state.")
            }
            return Lockfile(entries: file.entries)
        } catch let error as SegSyncError {
            throw error
        } catch {
            throw SegSyncError("the lockfile \(path) is damaged (\(StateJSON.describe(error))); restore it from version control or delete it to rebuild it from state.")
        }
    }

    /// A relative path of plain names: no `..`, `.`, empty or absolute parts, no NUL.
    /// One pass over the bytes, no allocation: it runs for every entry on every load.
    static func isConfined(_ path: String) -> Bool {
        var component = 0  // bytes in the current component
        var dots = 0       // of which are dots
        for byte in path.utf8 {
            if byte == 0 { return false }
            if byte == UInt8(ascii: "/") {
                if component == 0 || component == dots && dots <= 2 { return false }
                component = 0
                dots = 0
            } else {
                component += 1
                if byte == UInt8(ascii: ".") { dots += 1 }
            }
        }
        return component > 0 && !(component == dots && dots <= 2)
    }

    /// Writes the rendered lockfile to `path` atomically (temporary file, `fsync`, rename).
    public func write(to path: String) throws {
        try AtomicFile.write(Data(rendered().utf8), to: path, newFileMode: 0o644)
    }

    /// Writes `SHA256SUMS`, then `segsync.lock`, for `layout`.
    public func write(to layout: Layout, output: any OutputStore) async throws {
        try await output.writeChecksums(Checksums.render(entries))
        try write(to: layout.lockfilePath)
    }

    /// The lockfile that lists exactly the outputs `state` records as downloaded.
    public static func derived(from state: State) -> Lockfile {
        Lockfile(entries: state.partitions.values.compactMap { record in
            guard record.phase == .downloaded, let output = record.output else { return nil }
            return Entry(path: output.path, sha256: output.sha256, bytes: output.bytes, export: record.export,
                         segment: record.parameters.segment, type: record.parameters.type, format: record.parameters.format,
                         start: record.start, end: record.end, fingerprint: record.fingerprint, source: record.parameters.endpoint,
                         etag: output.identity, provisional: Provisional(output))
        })
    }
}

/// What `segsync.lock` and `SHA256SUMS` were when segsync last wrote them, kept in the
/// state store: while both files are untouched and state has not moved since, the
/// lockfile is known to be ``Lockfile/derived(from:)`` the state, and a plan need not read
/// or parse either file.
public struct LockfileMark: Codable, Sendable, Equatable {
    public static let name = "lockfile"
    /// What ``Lockfile/derived(from:)`` writes, as a number: a segsync that derives more
    /// (2: a bucket's entries carry `etag`) trusts no mark an older one took, so the first
    /// run after an upgrade rewrites the lockfile.
    public static let currentFormat = 2

    /// The state's serial when the mark was taken.
    public var serial: Int
    public var lockfile: String
    public var checksums: String
    /// ``currentFormat`` of the segsync that took the mark; nil before it was kept.
    public var format: Int?

    /// Records a mark when `lockfile`, as now on disk, says exactly what `state` does;
    /// clears it otherwise.
    public static func record(for lockfile: Lockfile, state: State, layout: Layout, output: any OutputStore, in store: any StateStore) async throws {
        var mark: LockfileMark?
        if lockfile == .derived(from: state),
           let lockIdentity = FileIO.identity(ofFileAt: layout.lockfilePath),
           let sumsIdentity = await output.checksumsIdentity() {
            mark = LockfileMark(serial: state.serial, lockfile: lockIdentity, checksums: sumsIdentity, format: currentFormat)
        }
        let text = try mark.map { String(decoding: try StateJSON.lineEncoder.encode($0), as: UTF8.self) }
        try await store.setMark(name, text)
    }

    /// Whether a recorded mark says both files are as segsync wrote them from `state`,
    /// so the lockfile is ``Lockfile/derived(from:)`` it and neither file need be read.
    public static func vouches(for state: State, layout: Layout, output: any OutputStore, in store: any StateStore) async throws -> Bool {
        guard let text = try await store.mark(name),
              let mark = try? StateJSON.decoder.decode(LockfileMark.self, from: Data(text.utf8)),
              mark.serial == state.serial, mark.format == currentFormat,
              mark.lockfile == FileIO.identity(ofFileAt: layout.lockfilePath) else { return false }
        return await mark.checksums == output.checksumsIdentity()
    }
}

/// `SHA256SUMS` in the output folder, in the format `sha256sum -c` accepts.
public enum Checksums {
    public static let fileName = "SHA256SUMS"

    /// `sha256sum`'s format, sorted by path: `<hex>  <path>` per line, so `sha256sum -c`
    /// run inside the output folder checks every file.
    public static func render(_ entries: [Lockfile.Entry]) -> String {
        entries.sorted { $0.path < $1.path }.map { "\($0.sha256)  \($0.path)\n" }.joined()
    }

    /// `path → sha256` from a SHA256SUMS file (text or binary mode markers accepted).
    public static func parse(_ text: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let hash = line.prefix(64)
            let rest = line.dropFirst(64)
            guard hash.count == 64, hash.allSatisfy(\.isHexDigit), rest.hasPrefix("  ") || rest.hasPrefix(" *") else {
                throw SegSyncError("\(fileName):\(number + 1): expected '<sha256>  <path>'.")
            }
            result[String(rest.dropFirst(2))] = String(hash)
        }
        return result
    }
}

/// A JSON string literal; the one escaper for hand-rendered JSON.
func jsonString(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        case _ where scalar.value < 0x20: let hex = String(scalar.value, radix: 16)
            result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}
