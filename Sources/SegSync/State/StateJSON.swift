import Foundation
import SegSyncVocabulary

/// The one JSON configuration for segsync's own documents: state as `segsync state pull`
/// prints it, the lockfile, saved plans. Sorted keys and RFC 3339 instants, so the same
/// content is always the same bytes.
public enum StateJSON {
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Timestamp.format(date))
        }
        return encoder
    }()

    /// One line per document (the earlier journal's lines, stored export parameters).
    public static let lineEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = StateJSON.encoder.dateEncodingStrategy
        return encoder
    }()

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = Timestamp.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not an RFC 3339 time")
            }
            return date
        }
        return decoder
    }()

    /// A one-line reason from a DecodingError, naming the field path instead of dumping it.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "unreadable JSON" }
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return path.isEmpty ? "the top level" : String(path.drop(while: { $0 == "." }))
        }
        switch error {
        case .dataCorrupted(let context): return context.codingPath.isEmpty ? "not JSON" : "bad value at \(path(context))"
        case .keyNotFound(let key, let context): return "missing '\(key.stringValue)' at \(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "wrong type at \(path(context))"
        @unknown default: return "unreadable JSON"
        }
    }

    /// A state document (`segsync state pull`'s output, or an earlier build's
    /// `state.json`), checked for a version this segsync reads.
    public static func decodeState(_ data: Data, source: String) throws -> State {
        let state: State
        do {
            state = try decoder.decode(State.self, from: data)
        } catch {
            throw SegSyncError("\(source) is not segsync state (\(describe(error))).")
        }
        guard state.version <= State.currentVersion else {
            throw SegSyncError("\(source) has state format \(state.version), newer than this segsync reads (\(State.currentVersion)); upgrade segsync.")
        }
        for (key, record) in state.partitions where key != record.key.description {
            throw SegSyncError("\(source) is not consistent: the partition recorded under '\(key)' is \(record.key).")
        }
        return state
    }
}
