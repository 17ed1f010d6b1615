import Foundation
import Crypto
import SegSyncStorage
import SegSyncVocabulary
import Testing
import TestSupport
@testable import SegSync

func mode(of path: String) -> mode_t {
    var info = stat()
    _ = stat(path, &info)
    return info.st_mode & 0o7777
}

@Suite(.timeLimit(.minutes(2))) struct StorageTests {
    @Test("atomic writes replace content, leave no temporary files, and keep the mode")
    func atomicWrite() throws {
        let folder = try TemporaryFolder()
        let path = folder.path + "/state.json"
        try AtomicFile.write(Data("one".utf8), to: path)
        #expect(folder.read("state.json") == "one")
        #expect(mode(of: path) == 0o600)
        chmod(path, 0o640)
        try AtomicFile.write(Data("two".utf8), to: path)
        #expect(folder.read("state.json") == "two")
        #expect(mode(of: path) == 0o640)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["state.json"])
    }

    static func sampleRecord() -> PartitionRecord {
        let partition = Partition(export: "e", start: Timestamp.parse("2026-11-27T00:00:00Z")!, end: Timestamp.parse("2026-11-28T00:00:00Z")!, label: "2026-11-27", fingerprint: "abc")
        let spec = ExportSpec(name: "e", segment: "s", type: .events, format: .csv,
                              window: WindowSpec(every: Span(days: 1), cadence: .day, extent: .last(Span(days: 1)), settle: Span()),
                              timeZone: TimeZone(identifier: "UTC")!)
        var record = PartitionRecord(partition: partition, parameters: ExportParameters(spec, dialect: .seed), phase: .requested, now: partition.end)
        record.operationId = "op-1"
        return record
    }

    /// Writes state.json as builds before the database stores did, with `journalEpoch`.
    static func writeLegacy(_ state: State, epoch: String?, to path: String) throws {
        var object = try JSONSerialization.jsonObject(with: StateJSON.encoder.encode(state)) as! [String: Any]
        object["version"] = object.removeValue(forKey: "format_version")
        if let epoch { object["journalEpoch"] = epoch }
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
    }

    static func journalLine(_ key: String, _ record: PartitionRecord?, epoch: String?) throws -> String {
        String(decoding: try StateJSON.lineEncoder.encode(LegacyStateFile.JournalLine(key: key, record: record, epoch: epoch)), as: UTF8.self) + "\n"
    }

    @Test("an earlier build's state.json is read with its journal: a torn last line ignored, folded epochs skipped")
    func legacyJournal() throws {
        let folder = try TemporaryFolder()
        let path = folder.path + "/state.json"
        var record = Self.sampleRecord()
        let key = record.key.description
        try Self.writeLegacy(State(lineage: "l-1", serial: 4), epoch: "E2", to: path)
        var journal = try Self.journalLine(key, record, epoch: "E2")
        record.phase = .running
        journal += try Self.journalLine(key, record, epoch: "E2")
        journal += try Self.journalLine("gone@2026-01-01T00:00:00Z", nil, epoch: "E2")
        // Lines of an older epoch were folded into the snapshot already.
        journal += try Self.journalLine("old@2026-01-01T00:00:00Z", record, epoch: "E1")
        try folder.write("state.journal", journal + #"{"key":"e@2026-11-27T00:00:00Z","rec"#)
        let state = try LegacyStateFile.loadWithJournal(path: path)
        #expect(state.partitions == [key: record])
        #expect(state.serial == 7)
        #expect(state.lineage == "l-1")

        // Damage before the end is an error naming the line.
        try folder.write("state.journal", "garbage\n" + journal)
        #expect { try LegacyStateFile.loadWithJournal(path: path) } throws: { ($0 as? SegSyncError)?.message.contains("damaged at line 1") == true }
    }

    @Test("the lockfile mark vouches while both files and state are as marked; a mark an older segsync took (no format) vouches for nothing")
    func lockfileMarkFormat() async throws {
        let folder = try TemporaryFolder()
        let layout = Layout(manifestPath: folder.path + "/segsync.yaml", output: "exports")
        let output = FolderOutput(layout: layout)
        let store = MemoryStateStore()
        var state = State()
        var record = Self.sampleRecord()
        record.phase = .downloaded
        record.output = OutputRecord(path: "e/2026-11-27.csv", bytes: 1, sha256: String(repeating: "a", count: 64))
        state[record.key] = record
        let lockfile = Lockfile.derived(from: state)
        try FileManager.default.createDirectory(atPath: layout.outputDirectory, withIntermediateDirectories: true)
        try await lockfile.write(to: layout, output: output)
        try await LockfileMark.record(for: lockfile, state: state, layout: layout, output: output, in: store)
        #expect(try await LockfileMark.vouches(for: state, layout: layout, output: output, in: store))

        let text = try #require(try await store.mark(LockfileMark.name))
        var object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["format"] as? Int == LockfileMark.currentFormat)
        object["format"] = nil
        try await store.setMark(LockfileMark.name, String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self))
        #expect(try await !LockfileMark.vouches(for: state, layout: layout, output: output, in: store),
                "an older segsync's lockfile lacks what this one derives (a bucket's etag): it is read and rewritten")
    }

    @Test("the journal an earlier build left without its snapshot (killed in its first run) is imported, not ignored")
    func legacyJournalAlone() async throws {
        let folder = try TemporaryFolder()
        try folder.write("segsync.yaml", "version: 1\nexports: []\n")
        let layout = Layout(manifestPath: folder.path + "/segsync.yaml", output: "exports")
        try FileManager.default.createDirectory(atPath: layout.stateDirectory, withIntermediateDirectories: true)
        var record = Self.sampleRecord()
        var journal = try Self.journalLine(record.key.description, record, epoch: nil)
        record.phase = .running
        record.operationId = "op-2"
        journal += try Self.journalLine(record.key.description, record, epoch: "E1")
        try journal.write(toFile: LegacyStateFile.journalPath(for: layout.legacyStatePath), atomically: false, encoding: .utf8)
        #expect(LegacyStateFile.exists(path: layout.legacyStatePath))

        let store = try await SQLiteStateStore.open(path: layout.databasePath, lockPath: layout.lockPath)
        let notes = try await LegacyImport.run(layout: layout, into: store)
        let state = try await store.load()
        await store.close()
        #expect(state.partitions == [record.key.description: record])
        #expect(!state.lineage.isEmpty)
        #expect(notes.map(\.message) == ["imported 1 partition from \(layout.displayPath(LegacyStateFile.journalPath(for: layout.legacyStatePath))) into \(store.name); the old file is kept as state.journal.imported."])
        #expect(!folder.exists(".segsync/state.journal"))
        #expect(folder.exists(".segsync/state.journal.imported"))
    }

    @Test("a state document with numbers out of range is refused, naming the partition and the field")
    func outOfRangeDocument() throws {
        var record = Self.sampleRecord()
        #expect(record.problems.isEmpty)
        record.progress = 1e300
        let key = record.key.description
        #expect { try State(lineage: "l", serial: 1, partitions: [key: record]).check(source: "pushed.json") } throws: {
            ($0 as? SegSyncError)?.message == "pushed.json has partition \(key) with progress 1e+300 is not between 0 and 100; fix or remove it and push again."
        }
        record.progress = 50
        record.attempts = -1
        record.output = OutputRecord(path: "e/x.csv", bytes: -5, sha256: "00", modified: .infinity)
        #expect(record.problems == ["attempts -1 is not between 0 and 2147483647", "output.bytes -5 is negative", "output.modified inf is not a number"])
        #expect { try State(lineage: "l", serial: -1).check(source: "x") } throws: { ($0 as? SegSyncError)?.message.contains("serial -1") == true }
        // What a store reads is clamped instead, except the partition's own instants.
        record.progress = -.infinity
        record.createdAt = Date(timeIntervalSince1970: 1e300)
        let clamped = try record.clamped(in: "the state")
        #expect(clamped.progress == 0 && clamped.attempts == 0 && clamped.output?.modified == nil)
        #expect(clamped.createdAt.timeIntervalSince1970 == PartitionRecord.instantRange.upperBound)
        record.start = Date(timeIntervalSince1970: .infinity)
        #expect { try record.clamped(in: "the state") } throws: {
            ($0 as? SegSyncError)?.message.hasPrefix("partition e@2026-11-27 has start_at inf in the state, which is not an instant") == true
        }
    }

    @Test("a state document that cannot be read is reported with what is wrong")
    func corruptState() throws {
        #expect { try StateJSON.decodeState(Data("{ not json".utf8), source: "x.json") } throws: {
            ($0 as? SegSyncError)?.message == "x.json is not segsync state (not JSON)."
        }
        #expect { try StateJSON.decodeState(Data(#"{"version": 1, "lineage": "x"}"#.utf8), source: "x.json") } throws: {
            ($0 as? SegSyncError)?.message.contains("missing 'serial'") == true
        }
        #expect { try StateJSON.decodeState(Data(#"{"format_version": 9, "lineage": "x", "serial": 1, "partitions": {}}"#.utf8), source: "x.json") } throws: {
            ($0 as? SegSyncError)?.message.contains("newer than this segsync reads") == true
        }
        // A record filed under another partition's key is refused, not silently re-keyed.
        let record = Self.sampleRecord()
        let state = State(lineage: "l", serial: 1, partitions: ["other@2026-01-01T00:00:00Z": record])
        #expect { try StateJSON.decodeState(try StateJSON.encoder.encode(state), source: "x.json") } throws: {
            ($0 as? SegSyncError)?.message.contains("not consistent") == true
        }
        // The document round-trips, byte for byte.
        let good = State(lineage: "l", serial: 3, partitions: [record.key.description: record])
        let bytes = try StateJSON.encoder.encode(good)
        #expect(try StateJSON.encoder.encode(try StateJSON.decodeState(bytes, source: "x")) == bytes)
    }

    @Test("the atomic writer replaces through a new inode, keeps the old bytes on failure, and refuses links")
    func atomicWrites() throws {
        let folder = try TemporaryFolder()
        let path = folder.path + "/segsync.lock"
        try AtomicFile.write(Data("old".utf8), to: path, newFileMode: 0o644)
        // A hard link still holds the old bytes after a replace: the file was renamed over,
        // not written in place.
        #expect(link(path, folder.path + "/hard") == 0)
        var before = stat(), after = stat()
        stat(path, &before)
        try AtomicFile.write(Data("new".utf8), to: path)
        stat(path, &after)
        #expect(before.st_ino != after.st_ino)
        #expect(folder.read("hard") == "old")
        #expect(folder.read("segsync.lock") == "new")
        #expect(after.st_mode & 0o7777 == 0o644)
        // A write that cannot happen (the folder refuses new files) leaves the old content.
        chmod(folder.path, 0o500)
        defer { chmod(folder.path, 0o700) }
        if getuid() != 0 {
            #expect(throws: SegSyncError.self) { try AtomicFile.write(Data("lost".utf8), to: path) }
            #expect(folder.read("segsync.lock") == "new")
        }
        chmod(folder.path, 0o700)
        // A symbolic link is never turned into a 0777 file.
        try folder.write("target", "kept")
        #expect(symlink(folder.path + "/target", folder.path + "/linked.lock") == 0)
        #expect(throws: SegSyncError.self) { try AtomicFile.write(Data("x".utf8), to: folder.path + "/linked.lock") }
        #expect(folder.read("target") == "kept")
        var info = stat()
        lstat(folder.path + "/linked.lock", &info)
        #expect(info.st_mode & S_IFMT == S_IFLNK)
        #expect(folder.list("").allSatisfy { !$0.hasSuffix(".tmp") })
    }

    @Test("the lockfile is byte-identical for the same content, in any order")
    func lockfileDeterminism() throws {
        var entries: [Lockfile.Entry] = []
        for i in 0..<20 {
            let start = Date(timeIntervalSince1970: Double(i) * 86_400)
            entries.append(Lockfile.Entry(
                path: "e\(i % 3)/2026-11-\(10 + i).json", sha256: String(repeating: "ab", count: 32), bytes: Int64(i * 100),
                export: "e\(i % 3)", segment: "seg \"quoted\"", type: .events, format: .json,
                start: start, end: start.addingTimeInterval(86_400), fingerprint: "fp\(i)"))
        }
        let a = Lockfile(entries: entries).rendered()
        let b = Lockfile(entries: entries.shuffled()).rendered()
        #expect(a == b)
        let folder = try TemporaryFolder()
        try Lockfile(entries: entries.reversed()).write(to: folder.path + "/segsync.lock")
        #expect(folder.read("segsync.lock") == a)
        #expect(try Lockfile.load(path: folder.path + "/segsync.lock") == Lockfile(entries: entries))
        #expect(Lockfile().rendered() == "{\n  \"version\": 1,\n  \"entries\": []\n}\n")
    }

    @Test("SHA256SUMS is accepted by sha256sum -c")
    func checksums() throws {
        let folder = try TemporaryFolder()
        var entries: [Lockfile.Entry] = []
        for (index, name) in ["b/2026-11-02.csv", "a/2026-11-01.json.gz", "a/with space.csv"].enumerated() {
            try folder.write(name, "content \(index)\n")
            let digest = try FileDigest.sha256(ofFileAt: folder.path + "/" + name)
            entries.append(Lockfile.Entry(path: name, sha256: digest.sha256, bytes: digest.bytes, export: "a", segment: "s", type: .events, format: .csv,
                                          start: Date(), end: Date(), fingerprint: "f"))
        }
        let text = Checksums.render(entries)
        try folder.write("SHA256SUMS", text)
        #expect(try Checksums.parse(text).count == 3)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sha256sum", "--quiet", "-c", "SHA256SUMS"]
        process.currentDirectoryURL = URL(fileURLWithPath: folder.path)
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(throws: SegSyncError.self) { try Checksums.parse("nothex  a\n") }
    }

    @Test("the scan finds missing, resized, changed, unknown and partial files")
    func scan() throws {
        let folder = try TemporaryFolder()
        try folder.write("e/ok.json", "ok")
        try folder.write("e/resized.json", "longer than before")
        try folder.write("e/changed.json", "XX")
        try folder.write("e/stranger.txt", "hello")
        try folder.write("e/next.json.partial", "half")
        try folder.write("SHA256SUMS", "")
        func expected(_ text: String) -> ExpectedFile {
            ExpectedFile(bytes: Int64(text.utf8.count), sha256: SHA256Hex.of(text))
        }
        let files = ["e/ok.json": expected("ok"), "e/resized.json": expected("short"), "e/changed.json": expected("ab"), "e/gone.json": expected("x")]
        let observed = ObservedFiles.scan(directory: folder.path, expected: files, depth: .quick)
        #expect(observed.problems == [
            "e/resized.json": .sizeMismatch(expected: 5, found: 18),
            "e/changed.json": .checksumMismatch,
            "e/gone.json": .missing,
        ])
        #expect(observed.unknownFiles == ["e/stranger.txt"])
        #expect(observed.partialFiles == ["e/next.json.partial"])
    }

    @Test("a quick scan trusts an unchanged modification time; a full scan hashes anyway")
    func quickScan() throws {
        let folder = try TemporaryFolder()
        try folder.write("e/a.json", "ab")
        let modified = ObservedFiles.modificationTime(ofFileAt: folder.path + "/e/a.json")
        let wrong = ["e/a.json": ExpectedFile(bytes: 2, sha256: SHA256Hex.of("zz"), modified: modified)]
        #expect(ObservedFiles.scan(directory: folder.path, expected: wrong, depth: .quick).problems.isEmpty)
        #expect(ObservedFiles.scan(directory: folder.path, expected: wrong, depth: .full).problems == ["e/a.json": .checksumMismatch])
    }

    @Test("output paths cannot escape the output folder")
    func confinement() throws {
        let layout = Layout(manifestPath: "/repo/segsync.yaml", output: "exports")
        #expect(try layout.absolutePath(ofOutput: "e/2026-11-01.json") == "/repo/exports/e/2026-11-01.json")
        for bad in ["../x", "/etc/passwd", "e/../../x", "", "e//x", "./e"] {
            #expect(throws: SegSyncError.self) { try layout.absolutePath(ofOutput: bad) }
        }
    }
}

enum SHA256Hex {
    static func of(_ text: String) -> String {
        SHA256.hex(Data(text.utf8))
    }

}

@Suite(.timeLimit(.minutes(2))) struct LockfileConfinementTests {
    @Test("a lockfile path that would leave the output folder is refused before any file is touched",
          arguments: ["../outside.csv", "/etc/passwd", "a/../../b", "./a", "a//b", ""])
    func lockfileConfinement(path: String) throws {
        let folder = try TemporaryFolder()
        let entry = Lockfile.Entry(path: "placeholder", sha256: String(repeating: "0", count: 64), bytes: 1, export: "e", segment: "s",
                                   type: .events, format: .csv, start: Date(timeIntervalSince1970: 0), end: Date(timeIntervalSince1970: 3600),
                                   fingerprint: "f")
        try Lockfile(entries: [entry]).write(to: folder.path + "/segsync.lock")
        let text = try #require(folder.read("segsync.lock")).replacingOccurrences(of: "\"placeholder\"", with: jsonString(path))
        try folder.write("segsync.lock", text)
        #expect { try Lockfile.load(path: folder.path + "/segsync.lock") } throws: {
            ($0 as? SegSyncError)?.message.contains("is not a plain path inside the output folder") == true
        }
    }
}

@Suite(.timeLimit(.minutes(2))) struct SemaphoreTests {
    @Test("a cancelled waiter stops waiting and takes no permit")
    func cancelledWaiter() async throws {
        let semaphore = Semaphore(1)
        try await semaphore.wait()  // the only permit
        let waiter = Task { try await semaphore.wait() }
        try await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        await semaphore.signal()
        // The permit went back to the semaphore, not to the cancelled waiter.
        try await semaphore.wait()
    }
}

@Suite(.timeLimit(.minutes(2))) struct StatusTests {
    @Test("finished operations waiting for their download are READY, not running")
    func readyIsNotRunning() throws {
        let manifest = try #require(ManifestLoader.decode(
            "version: 1\nexports:\n  - { name: a, segment: s, type: events, window: { every: 1d, last: 2d } }\n", file: "m").0)
        let now = Timestamp.parse("2026-11-28T00:00:00Z")!
        let partitions = try manifest.partitions(of: manifest.exports[0], now: now)
        var state = State()
        for (partition, phase) in zip(partitions, [Phase.completed, .running]) {
            var record = PartitionRecord(partition: partition, parameters: ExportParameters(manifest.exports[0], in: manifest), phase: phase, now: now)
            record.operationId = "op-\(phase.rawValue)"
            state[partition.key] = record
        }
        let report = try StatusReport.make(manifest: manifest, state: state, now: now)
        #expect(report.rows.first.map { [$0.done, $0.running, $0.ready, $0.failed, $0.missing] } == [0, 1, 1, 0, 0])
        #expect(report.running.map(\.operationId) == ["op-running"])
    }
}
