import Foundation
import FullStoryContract
import SegSyncVocabulary

/// What an error means for the partition it stopped, and for the run: the one place that
/// decides whether a recorded export is given up.
///
/// The rule (ARCHITECTURE.md, invariants): once an operation id is committed, only three
/// things end it — the server says the operation (or its results) does not exist, the
/// operation is FAILED, or its results have expired. FAILED and expiry are answers, not
/// errors (``PartitionRun/poll(_:delay:since:)`` reads them); every error — of the network,
/// of the server's bytes, of the key, of the disk, of the state store, of an interrupt —
/// keeps the id, and the next run resumes it.
enum Verdict: Sendable, Equatable {
    /// The operation is gone on the server: the partition needs a new export.
    case exportAgain
    /// The partition stops for this run; its recorded operation stays for the next.
    case keep
    /// No operation was recorded: the partition failed (and says why in state).
    case fail
    /// The error is about the run, not the partition (a rejected key): every partition
    /// stops at once, every recorded operation is kept.
    case stopRun

    /// The verdict on `error`, met while following `operationId` (nil: none recorded yet).
    static func on(_ error: any Error, operationId: String?) -> Verdict {
        if let failure = error as? FullStoryAPIError {
            switch failure {
            case .unauthorized, .missingAPIKey:
                return .stopRun
            case .operationNotFound, .searchExportNotFound:
                return operationId == nil ? .fail : .exportAgain
            default:
                break
            }
        }
        if error is OutputUnusable { return .stopRun }
        if error is ResultsExpired { return operationId == nil ? .fail : .exportAgain }
        return operationId == nil ? .fail : .keep
    }

    /// Throws ``ResultsExpired`` when `operation` finished but its results expired by
    /// `now`: nothing is left to download, and the partition needs a new export.
    static func checkResults(of operation: ExportOperation, now: Date) throws {
        guard operation.state == .completed, let expires = operation.results?.expires, expires <= now else { return }
        throw ResultsExpired(operationId: operation.id, expires: expires)
    }
}

/// A finished operation whose results the server no longer keeps (`results.expires`).
struct ResultsExpired: Error, CustomStringConvertible {
    var operationId: String
    var expires: Date
    var description: String { "the results of operation \(operationId) expired at \(Timestamp.format(expires))" }
}
