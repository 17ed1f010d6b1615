import Foundation

/// `.segsync/state.json` and `state.journal`, as builds before the database stores wrote
/// them: read once, imported into the store, then renamed aside (``StateImport``).
public enum LegacyStateFile {
    /// One journal line: a partition's whole record, or its removal.
    struct JournalLine: Codable {
        var key: String
        var record: PartitionRecord?
        /// The snapshot's `journalEpoch` when the line was appended; lines of an older
        /// epoch were already folded into the snapshot.
        var epoch: String?
    }

    struct Epoch: Codable {
        var journalEpoch: String?
    }

    /// Where the earlier builds kept the journal of `path` (`state.journal` beside `state.json`).
    public static func journalPath(for path: String) -> String {
        (path as NSString).deletingPathExtension + ".journal"
    }

    /// Whether an earlier build left state at `path`: its snapshot, or only the journal
    /// (a build killed during its first run appended lines before it wrote any snapshot;
    /// those lines hold operation ids that must not be lost).
    public static func exists(path: String) -> Bool {
        FileManager.default.fileExists(atPath: path) || FileManager.default.fileExists(atPath: journalPath(for: path))
    }

    /// The snapshot with its journal replayed, or the journal alone when there is no
    /// snapshot (every line then counts: nothing was folded yet). A last journal line cut
    /// short by a crash is ignored; damage anywhere else is an error.
    public static func loadWithJournal(path: String) throws -> State {
        var state = State()
        var epoch: String?
        let hasSnapshot = FileManager.default.fileExists(atPath: path)
        if hasSnapshot {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SegSyncError("cannot read the earlier state file \(path); check its permissions.")
            }
            state = try StateJSON.decodeState(data, source: "the earlier state file \(path)")
            epoch = (try? StateJSON.decoder.decode(Epoch.self, from: data))?.journalEpoch
        }
        let journal = journalPath(for: path)
        if !hasSnapshot, !FileManager.default.fileExists(atPath: journal) {
            throw SegSyncError("cannot read the earlier state file \(path): it is not there.")
        }
        guard let lines = FileManager.default.contents(atPath: journal), !lines.isEmpty else { return state }
        let split = lines.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (index, line) in split.enumerated() where !line.isEmpty {
            do {
                let entry = try StateJSON.decoder.decode(JournalLine.self, from: Data(line))
                guard !hasSnapshot || entry.epoch == epoch else { continue }
                state.partitions[entry.key] = entry.record
                state.serial += 1
            } catch {
                if index == split.count - 1 { break }
                throw SegSyncError("the earlier state journal \(journal) is damaged at line \(index + 1) (\(StateJSON.describe(error))); move it aside to import \(path) without it.")
            }
        }
        return state
    }
}
