import Foundation
import SegSyncVocabulary

/// A plan saved with `segsync plan --out FILE` and applied later with `segsync apply FILE`.
///
/// As in Terraform, a saved plan is applied only while it still describes the world:
/// the same manifest, the same state (lineage and serial), and the same actions when
/// computed again for the same instant. Anything else is refused, never guessed at.
public enum SavedPlan {
    /// Writes `plan` as `plan --json` prints it, atomically.
    public static func write(_ plan: Plan, to path: String) throws {
        try AtomicFile.write(Data(PlanRenderer.json(plan).utf8), to: path, newFileMode: 0o644)
    }

    /// Reads a saved plan; refuses files that are not one, or of another format version.
    public static func load(path: String) throws -> PlanRenderer.Document {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SegSyncError("cannot read the saved plan \(path).")
        }
        let document: PlanRenderer.Document
        do {
            document = try JSONDecoder().decode(PlanRenderer.Document.self, from: data)
        } catch {
            throw SegSyncError("\(path) is not a plan saved by `segsync plan --out` (\(StateJSON.describe(error))).")
        }
        guard document.formatVersion == PlanRenderer.jsonFormatVersion else {
            throw SegSyncError("\(path) has plan format \(document.formatVersion); this segsync reads format \(PlanRenderer.jsonFormatVersion).")
        }
        return document
    }

    /// The instant and options the saved plan was made with.
    public static func inputs(of document: PlanRenderer.Document) throws -> (now: Date, options: Planner.Options) {
        guard let now = Timestamp.parse(document.now) else { throw SegSyncError("the saved plan's 'now' is not a time.") }
        return (now, Planner.Options(targets: document.targets, forcePrune: document.prune,
                                     retryFailed: document.retryFailed ?? false, checksum: document.checksum ?? false))
    }

    /// Checks that `fresh`, computed now from the same inputs, is the saved plan.
    public static func check(_ document: PlanRenderer.Document, against fresh: Plan, path: String) throws {
        if document.manifestSHA256 != fresh.manifestSHA256 {
            throw SegSyncError("the saved plan \(path) was made from another version of the manifest; run `segsync plan --out \(path)` again.")
        }
        if document.state.lineage != fresh.lineage, !document.state.lineage.isEmpty {
            throw SegSyncError("the saved plan \(path) belongs to another state (lineage \(document.state.lineage), this folder has \(fresh.lineage)); run `segsync plan --out \(path)` again.")
        }
        if document.state.serial != fresh.serial || document.state.lineage != fresh.lineage {
            throw SegSyncError("the saved plan \(path) is stale: the state has changed since (serial \(document.state.serial) → \(fresh.serial)); run `segsync plan --out \(path)` again.")
        }
        // Progress in the details may have moved on; the work itself must be the same.
        func work(_ actions: [PlanRenderer.Document.Action]) -> [String] {
            actions.map { "\($0.action.rawValue) \($0.export) \($0.start) \($0.path ?? "")" }
        }
        if work(document.actions) != work(PlanRenderer.document(fresh).actions) {
            throw SegSyncError("the saved plan \(path) no longer matches the state and output folder (the work to do changed since it was made); run `segsync plan --out \(path)` again.")
        }
    }
}
