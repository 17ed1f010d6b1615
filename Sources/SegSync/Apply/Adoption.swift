import Foundation
import FullStoryContract
import SegSyncVocabulary

/// Finds the export of a create whose answer was lost, instead of exporting again.
///
/// Before every create, segsync commits a ``CreateIntent``: this partition is about to be
/// exported, sent at this instant. The answer's id replaces it. An intent still there at
/// the next run means the server may have made an export that no record claims: a SIGKILL
/// between the answer and the commit, a reset, a timeout, an answer segsync could not read.
///
/// The production API lists search-export operations (newest first) with their id, state
/// and `createdAt`, but no details: an orphan can be told only by when it was created.
/// So the rule is strict. An intent's window runs from its send time to when an
/// unreadable answer arrived, or to its send time plus the request timeout when none did,
/// moved onto the server's clock by the offset measured from its `Date` headers and
/// widened by ``slack``. A candidate is a listed export whose id no record in the state
/// database claims (any workspace's). An intent adopts a candidate only when that is the
/// one candidate in its window and lies in no other open intent's window. Anything else
/// is not adopted: the partition is exported again, and the candidates are reported as
/// exports no partition claims, for a person to look at.
///
/// Creates are sent one at a time (``Executor``'s create gate), so a run leaves at most
/// one intent with no answer at all, and its window is its own.
public enum Adoption {
    /// How far an intent's window is widened either side, in seconds: the `Date` header
    /// has whole seconds, and the offset measured from it is good to about one.
    public static let slack = 1.5

    /// An open intent as matched.
    public struct Intent: Sendable, Equatable {
        public var key: PartitionKey
        public var sentAt: Date
        /// The server's clock minus ours used for the window, in seconds.
        public var offset: Double
        /// When its export can have been created, by the server's clock.
        public var window: ClosedRange<Date>

        public init(key: PartitionKey, intent: CreateIntent, measuredOffset: Double?) {
            self.key = key
            sentAt = intent.sentAt
            offset = Adoption.offset(of: intent, measured: measuredOffset)
            window = Adoption.window(of: intent, measuredOffset: measuredOffset)
        }
    }

    /// The server's clock minus ours for `intent`: as measured when it was sent, else now.
    static func offset(of intent: CreateIntent, measured: Double?) -> Double {
        let offset = intent.clockOffset ?? measured ?? 0
        return offset.isFinite ? offset : 0
    }

    /// When `intent`'s export can have been created, by the server's clock, widened by ``slack``.
    public static func window(of intent: CreateIntent, measuredOffset: Double?) -> ClosedRange<Date> {
        let offset = offset(of: intent, measured: measuredOffset)
        let lower = intent.sentAt.addingTimeInterval(offset - slack)
        let upper = intent.windowEnd.addingTimeInterval(offset + slack)
        // A state database can hold what no run wrote (a pushed file): never a trap.
        return lower <= upper ? lower...upper : lower...lower
    }

    /// What the operations list says about one intent.
    public enum Outcome: Sendable, Equatable {
        /// Exactly one export matches it, and no other intent: it is this partition's.
        /// `lag` is how long after the request was sent the server created it.
        case adopted(ExportOperation, lag: Double)
        /// No unclaimed export in its window: the create made none.
        case notFound
        /// More than one export could be its, or its one could be another intent's.
        case ambiguous(candidates: [String])
        /// The operations could not be listed; the intent stays for the next run.
        case unavailable(String)
        /// This API has no operations list (the seed dialect), or this key may not read
        /// it (why): exported again, as before.
        case unsupported(String)
    }

    /// The outcome of every open intent, and the exports in their windows that no
    /// partition claims once the adopted ones are taken.
    public struct Result: Sendable, Equatable {
        public var outcomes: [PartitionKey: Outcome] = [:]
        public var unclaimed: [ExportOperation] = []
        /// Pages of the operations list read.
        public var pages = 0

        public init(outcomes: [PartitionKey: Outcome] = [:], unclaimed: [ExportOperation] = [], pages: Int = 0) {
            self.outcomes = outcomes
            self.unclaimed = unclaimed
            self.pages = pages
        }
    }

    /// The strict match of `intents` against `candidates` (listed exports no record
    /// claims): a pure function. `otherWindows` are those of open intents not matched
    /// here (other partitions', other workspaces'): an export in one of them is not
    /// adopted either, as it may be theirs.
    public static func match(_ intents: [Intent], candidates: [ExportOperation], otherWindows: [ClosedRange<Date>] = []) -> Result {
        var result = Result()
        var adopted = Set<String>()
        for intent in intents {
            let inWindow = candidates.filter { $0.createdAt.map(intent.window.contains) ?? false }
            guard let only = inWindow.first else {
                result.outcomes[intent.key] = .notFound
                continue
            }
            let elsewhere = intents.contains { $0.key != intent.key && $0.window.contains(only.createdAt!) }
                || otherWindows.contains { $0.contains(only.createdAt!) }
            if inWindow.count > 1 || elsewhere {
                result.outcomes[intent.key] = .ambiguous(candidates: inWindow.map(\.id))
                continue
            }
            adopted.insert(only.id)
            let lag = only.createdAt!.timeIntervalSince(intent.sentAt) - intent.offset
            result.outcomes[intent.key] = .adopted(only, lag: lag)
        }
        // Exports some window holds that no partition took.
        result.unclaimed = candidates.filter { candidate in
            !adopted.contains(candidate.id) && intents.contains { $0.window.contains(candidate.createdAt!) }
        }.sorted { ($0.createdAt!, $0.id) < ($1.createdAt!, $1.id) }
        return result
    }

    /// The open intents of `state`: records a create was sent for whose answer is not
    /// recorded, each with its window.
    public static func intents(in state: State, measuredOffset: Double?) -> [Intent] {
        state.partitions.values.compactMap { record in
            guard record.phase == .creating, let intent = record.intent else { return nil }
            return Intent(key: record.key, intent: intent, measuredOffset: measuredOffset)
        }.sorted { $0.sentAt < $1.sentAt }
    }

    /// Most disowned ids a partition keeps, the newest: ambiguity takes two lost answers
    /// at once, so a long list means something else is wrong, and a record stays small.
    static let maxDisowned = 100

    /// `kept` with `candidates` added once each, the newest last, at most ``maxDisowned``.
    public static func disowned(_ kept: [String], adding candidates: [String]) -> [String]? {
        var ids = kept.filter { !candidates.contains($0) } + candidates
        if ids.count > maxDisowned { ids.removeFirst(ids.count - maxDisowned) }
        return ids.isEmpty ? nil : ids
    }

    /// Most pages read before giving up on reaching the oldest intent (100 operations a
    /// page): an account making 100,000 exports since is not one segsync can match in.
    static let maxPages = 1000

    /// Lists search-export operations back to the oldest of `intents`' windows, takes out
    /// the ids any record in the state database claims, and matches the rest; `others`
    /// (this workspace's open intents not resolved now) and every other workspace's open
    /// intents only keep an export in their windows from being adopted. Every outcome is
    /// ``Outcome/unavailable(_:)`` when the list cannot be read, ``Outcome/unsupported(_:)``
    /// when the API has none or the key may not read it.
    public static func resolve(_ intents: [Intent], others: [Intent] = [], client: any ExportService,
                               store: any StateStore) async -> Result {
        guard let oldest = intents.map(\.window.lowerBound).min() else { return Result() }
        func all(_ outcome: Outcome) -> Result {
            Result(outcomes: Dictionary(uniqueKeysWithValues: intents.map { ($0.key, outcome) }))
        }
        var listed: [ExportOperation] = []
        var listedIds = Set<String>()
        var token: String?
        var seen = Set<String>()
        var pages = 0
        do {
            repeat {
                guard let page = try await client.listExportOperations(pageToken: token) else {
                    return all(.unsupported("this API does not list operations"))
                }
                pages += 1
                // A page can repeat an entry of the one before when exports were made meanwhile.
                listed += page.operations.filter { $0.createdAt != nil && listedIds.insert($0.id).inserted }
                // Newest first: a page that reaches back past the oldest window is the last needed.
                if page.operations.contains(where: { ($0.createdAt ?? .distantFuture) < oldest }) { break }
                token = page.nextPageToken
                if let token, !seen.insert(token).inserted {
                    return all(.unavailable("the operations list repeats a pagination token"))
                }
                if pages >= maxPages {
                    return all(.unavailable("the operations list did not reach back to \(Timestamp.format(oldest)) in \(maxPages) pages"))
                }
            } while token != nil
        } catch FullStoryAPIError.unexpectedResponse(status: 404, detail: _) {
            return all(.unsupported("this API does not list operations"))
        } catch FullStoryAPIError.unauthorized(_, let message) {
            // Stuck forever otherwise: a key that may create exports but not list them.
            let said = message.map { " (\(FullStoryAPIError.clip($0, to: 120)))" } ?? ""
            return all(.unsupported("the API key may not list operations\(said)"))
        } catch let error as FullStoryAPIError {
            return all(.unavailable("could not list FullStory's operations to look for its export: \(error.description)"))
        } catch {
            return all(.unavailable("could not list FullStory's operations to look for its export: \(error)"))
        }
        let inWindows = listed.filter { operation in intents.contains { $0.window.contains(operation.createdAt!) } }
        let claimed: Set<String>
        let foreign: [CreateIntent]
        do {
            // Open intents first, then claims: another workspace's answer ends its intent and
            // records its id in one transaction, so one of the two reads sees it (claims
            // read first could miss the id and the intents then miss the window).
            foreign = try await store.foreignIntents()
            claimed = try await store.claimed(inWindows.map(\.id))
        } catch {
            return all(.unavailable("could not check which exports state claims: \(error)"))
        }
        let measured = client.serverClockOffset
        let otherWindows = others.map(\.window) + foreign.map { window(of: $0, measuredOffset: measured) }
        var result = match(intents, candidates: inWindows.filter { !claimed.contains($0.id) }, otherWindows: otherWindows)
        result.pages = pages
        return result
    }
}
