import Foundation
import SegSyncVocabulary
import Testing
import TestSupport
@testable import SegSync

/// Outputs the lockfile vouches for while state has no record of them (a lost state):
/// adopted only when their bytes and their settings are what the manifest wants now.
@Suite(.timeLimit(.minutes(2))) struct LockfileOnlyTests {
    static let base = """
        version: 1
        api: { dialect: fullstory }
        exports:
          - name: daily
            segment: everyone
            type: individuals
            window: { every: 1d, last: 1d }
        """
    static let now = Timestamp.parse("2026-11-28T00:00:00Z")!

    /// A folder holding `content` where `manifestText` puts its one partition, recorded in
    /// a lockfile only, with `recordedSHA256` and the fingerprint of `recordedManifest`.
    func plan(manifest manifestText: String, recordedManifest: String = base, content: String = "[1]",
              recordedSHA256: String? = nil) throws -> Plan {
        let folder = try TemporaryFolder()
        let recorded = try #require(ManifestLoader.decode(recordedManifest, file: "m").0)
        let manifest = try #require(ManifestLoader.decode(manifestText, file: "m").0)
        let old = try recorded.partitions(of: recorded.exports[0], now: Self.now)[0]
        let path = Layout.relativePath(for: old, export: recorded.exports[0])
        try folder.write("exports/" + path, content)
        let entry = Lockfile.Entry(
            path: path, sha256: recordedSHA256 ?? SHA256Hex.of(content), bytes: Int64(content.utf8.count), export: "daily",
            segment: "everyone", type: .individuals, format: recorded.exports[0].format, start: old.start, end: old.end,
            fingerprint: old.fingerprint)
        let lockfile = Lockfile(entries: [entry])
        let state = State()
        let observed = ObservedFiles.scan(directory: folder.path + "/exports",
                                          expected: Planner.expectedFiles(state: state, lockfile: lockfile), depth: .quick)
        return try Planner.plan(manifest: manifest, state: state, lockfile: lockfile, observed: observed, now: Self.now)
    }

    @Test("an intact output with today's settings is adopted, not downloaded again")
    func adopted() throws {
        let plan = try plan(manifest: Self.base)
        #expect(plan.actions.isEmpty)
        #expect(plan.adoptions.count == 1)
    }

    @Test("the right size but the wrong bytes is repaired, even with nothing in state to compare times with")
    func wrongBytes() throws {
        let plan = try plan(manifest: Self.base, content: "[2]", recordedSHA256: SHA256Hex.of("[1]"))
        #expect(plan.actions.map(\.kind) == [.repair])
        #expect(plan.actions.first?.detail == "checksum mismatch")
        #expect(plan.adoptions.isEmpty)
    }

    @Test("settings that change the bytes make it a replace, never an adoption", arguments: [
        ("time zone", "    timezone: Europe/Paris\n"),
        ("fields", "    fields: [UserId]\n"),
        ("decompress", "    decompress: true\n"),
        ("segment window", "    segmentWindow: 30d\n"),
    ])
    func changedSettings(what: String, line: String) throws {
        let plan = try plan(manifest: Self.base.replacingOccurrences(of: "    type: individuals\n", with: "    type: individuals\n" + line))
        #expect(plan.adoptions.isEmpty, "\(what)")
        #expect(plan.actions.contains { $0.kind == .replace || $0.kind == .create }, "\(what): \(plan.actions.map(\.kind))")
    }

    @Test("another dialect is a replace, never an adoption")
    func changedDialect() throws {
        let plan = try plan(manifest: Self.base.replacingOccurrences(of: "dialect: fullstory", with: "dialect: seed"))
        #expect(plan.adoptions.isEmpty)
        #expect(plan.actions.map(\.kind) == [.replace])
    }
}
