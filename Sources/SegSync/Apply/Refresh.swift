import Foundation
import FullStoryAPI

/// Brings in-flight records up to date with read-only GETs, so a plan shows what the
/// operations are doing now. Never creates anything and never writes state.
public enum Refresh {
    public static func operations(in state: State, client: FullStoryClient, exports: Set<String>? = nil, now: Date) async -> (State, [String]) {
        var refreshed = state
        var warnings: [String] = []
        let inFlight = state.partitions.filter { _, record in
            [.requested, .running, .completed].contains(record.phase) && record.operationId != nil
                && (exports?.contains(record.export) ?? true)
        }
        await withTaskGroup(of: (String, Result<ExportOperation, FullStoryAPIError>).self) { group in
            for (key, record) in inFlight {
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
            for await (key, result) in group {
                guard var record = refreshed.partitions[key] else { continue }
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
                    warnings.append("could not refresh \(record.export) \(record.label): \(error.description)")
                }
                record.updatedAt = now
                refreshed.partitions[key] = record
            }
        }
        return (refreshed, warnings.sorted())
    }
}
