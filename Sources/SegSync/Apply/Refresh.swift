import Foundation
import FullStoryContract

/// Brings in-flight records up to date with read-only GETs, so a plan shows what the
/// operations are doing now. Never creates anything and never writes state.
public enum Refresh {
    /// At most `concurrency` GETs run at once. If the API cannot be reached at all, the
    /// refresh stops at the first such failure with one warning, instead of one per
    /// operation; records not refreshed keep their last known state. A warning about one
    /// partition points at its export in `manifest`, when given.
    public static func operations(in state: State, client: any ExportService, exports: Set<String>? = nil, now: Date,
                                  manifest: Manifest? = nil, concurrency: Int = 8) async -> (State, [Diagnostic]) {
        var refreshed = state
        var warnings: [Diagnostic] = []
        var unreachable: String?
        var pending = state.partitions.filter { _, record in
            [.requested, .running, .completed].contains(record.phase) && record.operationId != nil
                && (exports?.contains(record.export) ?? true)
        }.sorted { $0.key < $1.key }[...]
        await withTaskGroup(of: (String, Result<ExportOperation, FullStoryAPIError>).self) { group in
            func startNext() {
                guard let (key, record) = pending.popFirst() else { return }
                group.addTask {
                    do {
                        return (key, .success(try await client.getOperation(record.operationId!)))
                    } catch let error as FullStoryAPIError {
                        return (key, .failure(error))
                    } catch {
                        return (key, .failure(.transport(cause: "\(error)")))
                    }
                }
            }
            for _ in 0..<max(1, concurrency) { startNext() }
            for await (key, result) in group {
                defer { startNext() }
                if unreachable != nil { continue }
                if case .failure(.transport(let cause)) = result {
                    unreachable = cause
                    pending.removeAll()
                    group.cancelAll()
                    continue
                }
                guard let record = refreshed.partitions[key] else { continue }
                let (updated, warning) = update(record, with: result, now: now, manifest: manifest)
                refreshed.partitions[key] = updated
                if let warning { warnings.append(warning) }
            }
        }
        if let unreachable {
            warnings = [Diagnostic(.warning, "could not reach the API (\(unreachable)); running operations show their last known state")]
        }
        return (refreshed, warnings.sorted { $0.message < $1.message })
    }

    /// A record as one GET found its operation; a failed GET leaves it as it was, with a
    /// warning pointing at its export in `manifest`.
    static func update(_ record: PartitionRecord, with result: Result<ExportOperation, FullStoryAPIError>, now: Date,
                       manifest: Manifest?) -> (PartitionRecord, Diagnostic?) {
        var record = record
        var warning: Diagnostic?
        switch result {
        case .success(let operation):
            record.operationState = operation.state.rawValue
            record.progress = operation.estimatePctComplete
            switch operation.state {
            case .completed: record.phase = .completed
            case .failed:
                record.phase = .failed
                record.lastError = operation.errorDetails ?? "the export failed"
            case .pending, .running, .unknown: record.phase = .running
            }
        case .failure(.operationNotFound):
            record.phase = .failed
            record.lastError = "the API no longer knows operation \(record.operationId!)"
        case .failure(let error):
            let export = manifest?.exports.first { $0.name == record.export }
            warning = Diagnostic(.warning, file: export.flatMap { _ in manifest?.file }, at: export?.location,
                                 "could not refresh \(record.export) \(record.label): \(error.description)")
        }
        record.updatedAt = now
        return (record, warning)
    }
}
