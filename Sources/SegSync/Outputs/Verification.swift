import Foundation
import SegSyncVocabulary

/// `segsync verify`: the outputs checked against `segsync.lock`, without the FullStory API.
public struct Verification: Sendable, Equatable {
    public var checked: Int
    public var missing: [String]
    public var changed: [String: String]
    public var unknown: [String]
    /// Lines of `SHA256SUMS` that disagree with the lockfile.
    public var checksumsFileProblems: [String]

    public var ok: Bool { missing.isEmpty && changed.isEmpty && unknown.isEmpty && checksumsFileProblems.isEmpty }

    /// Checks every output `segsync.lock` lists: a file is hashed; an object whose entry
    /// has an ETag is compared by size and ETag unless `checksum` (then it is read and
    /// hashed too). Also lists outputs the lockfile does not know and any disagreement of
    /// `SHA256SUMS` with it. Throws when there is no lockfile.
    public static func run(layout: Layout, output: (any OutputStore)? = nil, checksum: Bool = false) async throws -> Verification {
        let output = output ?? FolderOutput(layout: layout)
        guard FileManager.default.fileExists(atPath: layout.lockfilePath) else {
            throw SegSyncError("there is no \(Lockfile.fileName) at \(layout.lockfilePath), so there is nothing to verify against; run segsync apply first.")
        }
        let lockfile = try Lockfile.load(path: layout.lockfilePath)
        var expected: [String: ExpectedFile] = [:]
        for entry in lockfile.entries {
            _ = try layout.absolutePath(ofOutput: entry.path)
            // No modification time: a file is always hashed; only an ETag vouches unread.
            expected[entry.path] = ExpectedFile(bytes: entry.bytes, sha256: entry.sha256, identity: entry.etag)
        }
        let observed = try await output.observe(expected: expected, depth: checksum ? .full : .quick)
        var result = Verification(checked: expected.count, missing: [], changed: [:], unknown: observed.unknownFiles + observed.partialFiles, checksumsFileProblems: [])
        for (path, problem) in observed.problems {
            if problem == .missing { result.missing.append(path) } else { result.changed[path] = problem.description }
        }
        result.missing.sort()
        if let text = try await output.readChecksums() {
            let sums = try Checksums.parse(text)
            for entry in lockfile.entries where sums[entry.path] != entry.sha256 {
                result.checksumsFileProblems.append(sums[entry.path] == nil ? "\(entry.path) is not listed" : "\(entry.path) has another checksum")
            }
            for path in sums.keys where expected[path] == nil {
                result.checksumsFileProblems.append("\(path) is listed but not in segsync.lock")
            }
            result.checksumsFileProblems.sort()
        } else if !lockfile.entries.isEmpty {
            result.checksumsFileProblems.append("\(Checksums.fileName) is missing")
        }
        return result
    }

    /// `segsync verify --sha256sums`: what `cd <output> && sha256sum -c SHA256SUMS` checks
    /// (every listed file against its listed checksum, nothing else), from wherever the
    /// user stands.
    public static func sha256sums(layout: Layout, output: (any OutputStore)? = nil) async throws -> Verification {
        let output = output ?? FolderOutput(layout: layout)
        guard let text = try await output.readChecksums() else {
            throw SegSyncError("there is no \(Checksums.fileName) at \(output.checksumsLocation), so there is nothing to check; run segsync apply first.")
        }
        let sums = try Checksums.parse(text)
        var result = Verification(checked: sums.count, missing: [], changed: [:], unknown: [], checksumsFileProblems: [])
        for (path, expected) in sums.sorted(by: { $0.key < $1.key }) {
            do {
                guard let actual = try await output.digest(path) else {
                    result.missing.append(path)
                    continue
                }
                if actual != expected { result.changed[path] = "sha256 \(actual.prefix(12))…, listed \(expected.prefix(12))…" }
            } catch {
                result.changed[path] = "\(error)"
            }
        }
        return result
    }

    /// `segsync verify --json`.
    public struct Document: MachineDocument, Sendable {
        /// A file whose bytes differ from what the lockfile says, and how.
        public struct Changed: Encodable, Sendable {
            public var path: String
            public var problem: String
        }

        public var ok: Bool
        /// `segsync.lock` (the default) or `SHA256SUMS` (`--sha256sums`).
        public var against: String
        public var checked: Int
        public var missing: [String]
        public var changed: [Changed]
        public var unknown: [String]
        public var sha256sumsProblems: [String]

        enum CodingKeys: String, CodingKey {
            case ok, against, checked, missing, changed, unknown
            case sha256sumsProblems = "sha256sums_problems"
        }
    }

    /// The `verify --json` document; `against` names what was checked against.
    public func document(against: String) -> Document {
        Document(ok: ok, against: against, checked: checked, missing: missing,
                 changed: changed.keys.sorted().map { .init(path: $0, problem: changed[$0]!) },
                 unknown: unknown, sha256sumsProblems: checksumsFileProblems)
    }

    /// One line per problem, then `OK: …` or the count of problems.
    public func rendered(outputDirectory: String, against: String = Lockfile.fileName, paint: Paint = .none) -> String {
        var lines: [String] = []
        for path in missing { lines.append(paint("missing ", .red) + " \(path)") }
        for path in changed.keys.sorted() { lines.append(paint("changed ", .red) + " \(path)   \(changed[path]!)") }
        for path in unknown { lines.append(paint("unknown ", .yellow) + " \(path)   not written by segsync") }
        for problem in checksumsFileProblems { lines.append(paint("sums    ", .red) + " \(problem)") }
        if ok {
            lines.append(paint("OK:", .green) + " \(checked) file\(checked == 1 ? "" : "s") in \(outputDirectory) match \(against).")
        } else {
            let bad = missing.count + changed.count
            let listed = against == Lockfile.fileName ? "recorded" : "listed"
            lines.append(paint("FAILED:", .red) + " \(bad) of \(checked) \(listed) file\(checked == 1 ? "" : "s") missing or changed, \(unknown.count) unknown file\(unknown.count == 1 ? "" : "s")\(checksumsFileProblems.isEmpty ? "" : ", SHA256SUMS disagrees").")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
