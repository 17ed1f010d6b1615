import Foundation
import Logging
import SegSyncVocabulary
import FullStoryContract

// The JSON on the wire, per dialect. Requests are encoded exactly as each dialect expects;
// responses are decoded leniently in both, because the two differ and production adds
// fields and states over time: unknown fields are ignored, numbers may be integers or
// floats, optional fields that cannot be read are dropped rather than failing the call.

struct WireCreateExportRequest: Encodable {
    struct Range: Encodable {
        var start: String
        var end: String
    }

    var segmentId: String
    var type: String
    var format: String?
    var timeRange: Range?
    var segmentTimeRange: Range?
    var timezone: String?
    var fields: [String]?

    init(_ request: ExportRequest, dialect: Dialect) throws(FullStoryAPIError) {
        guard !request.segmentID.isEmpty else {
            throw .invalidRequest(message: "an export needs a segment id.")
        }
        for range in [request.timeRange, request.segmentTimeRange].compactMap({ $0 }) where range.start >= range.end {
            throw .invalidRequest(
                message:
                    "the time range starts at \(Timestamp.format(range.start)), which is not before its end \(Timestamp.format(range.end))."
            )
        }
        segmentId = request.segmentID
        timeRange = request.timeRange.map { Range(start: Timestamp.format($0.start), end: Timestamp.format($0.end)) }
        segmentTimeRange = request.segmentTimeRange.map {
            Range(start: Timestamp.format($0.start), end: Timestamp.format($0.end))
        }
        switch dialect {
        case .seed:
            type = request.type.rawValue
            if request.format == .ndjson {
                throw .invalidRequest(
                    message: "the ndjson format exists only in the fullstory dialect; use json or csv.")
            }
            format = request.format?.rawValue
            // The contract has no time zone: time ranges are absolute instants, so the same
            // rows are selected without it, and it is not sent. It has no field selection
            // either, and that would change the file, so it is refused.
            if let fields = request.fields, !fields.isEmpty {
                throw .invalidRequest(message: "the seed dialect has no field selection; remove 'fields'.")
            }
        case .fullstory:
            type = request.type == .individuals ? "TYPE_INDIVIDUAL" : "TYPE_EVENT"
            switch request.format ?? .json {
            case .json: format = "FORMAT_JSON"
            case .csv: format = "FORMAT_CSV"
            case .ndjson: format = "FORMAT_NDJSON"
            }
            timezone = request.timezone
            fields = request.fields
        }
    }

    func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain strings and arrays cannot fail.
        return (try? encoder.encode(self)) ?? Data("{}".utf8)
    }
}

/// A number the server may send as an integer, a float or a numeric string.
struct LenientNumber: Decodable {
    var value: Double?

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let double = try? container.decode(Double.self) {
            value = double
        } else if let int = try? container.decode(Int64.self) {
            value = Double(int)
        } else if let text = try? container.decode(String.self) {
            value = Double(text.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "%", with: ""))
        } else {
            value = nil
        }
    }
}

extension KeyedDecodingContainer {
    /// An optional field that is dropped, not fatal, when it has the wrong type.
    func lenient<T: Decodable>(_ type: T.Type, _ key: Key) -> T? {
        (try? decodeIfPresent(type, forKey: key)) ?? nil
    }

    func lenientString(_ key: Key) -> String? {
        if let text = lenient(String.self, key) { return text }
        if let number = lenient(Int64.self, key) { return String(number) }
        return nil
    }

    func lenientDate(_ key: Key) -> Date? {
        lenientString(key).flatMap(Timestamp.parse)
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
    init(_ name: String) { self.stringValue = name }
}

struct WireSegment: Decodable {
    var segment: Segment

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        guard let id = c.lenientString(AnyKey("id")), !id.isEmpty else {
            throw DecodingError.keyNotFound(AnyKey("id"), .init(codingPath: c.codingPath, debugDescription: ""))
        }
        segment = Segment(
            id: id,
            name: c.lenientString(AnyKey("name")) ?? id,
            creator: c.lenientString(AnyKey("creator")),
            created: c.lenientDate(AnyKey("created")),
            url: c.lenientString(AnyKey("url"))
        )
    }
}

struct WireSegmentList: Decodable {
    var page: SegmentPage

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        let segments = try c.decodeIfPresent([WireSegment].self, forKey: AnyKey("segments")) ?? []
        page = SegmentPage(segments: segments.map(\.segment), nextPageToken: Self.nextPageToken(in: c))
    }

    /// The contract says `pagination_token`; production says `nextPaginationToken`
    /// (older docs: `next_pagination_token`). An empty token means "no more pages".
    static func nextPageToken(in c: KeyedDecodingContainer<AnyKey>) -> String? {
        ["nextPaginationToken", "pagination_token", "next_pagination_token", "paginationToken"]
            .lazy
            .compactMap { c.lenientString(AnyKey($0)) }
            .first { !$0.isEmpty }
    }
}

struct WireOperation: Decodable {
    /// The state as sent, `nil` when absent (a production create answers only `{"operationId"}`).
    var rawState: String?
    var operation: ExportOperation

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        guard let id = c.lenientString(AnyKey("id")) ?? c.lenientString(AnyKey("operationId")), !id.isEmpty else {
            throw DecodingError.keyNotFound(AnyKey("id"), .init(codingPath: c.codingPath, debugDescription: ""))
        }
        rawState = c.lenientString(AnyKey("state"))
        var results: ExportResults?
        if let r = try? c.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("results")) {
            let candidate = ExportResults(
                downloadURL: r.lenientString(AnyKey("downloadUrl")).flatMap { URL(string: $0) },
                searchExportID: r.lenientString(AnyKey("searchExportId")),
                expires: r.lenientDate(AnyKey("expires"))
            )
            if candidate != ExportResults() { results = candidate }
        }
        operation = ExportOperation(
            id: id,
            type: c.lenientString(AnyKey("type")),
            state: OperationState(rawValue: rawState ?? "PENDING"),
            // A percentage, whatever the server wrote: NaN, infinities and 1e300 never reach
            // arithmetic (or an Int conversion) downstream.
            estimatePctComplete: c.lenient(LenientNumber.self, AnyKey("estimatePctComplete"))?.value
                .flatMap { $0.isFinite ? min(max($0, 0), 100) : nil },
            createdAt: c.lenientDate(AnyKey("createdAt")),
            finishedAt: c.lenientDate(AnyKey("finishedAt")),
            errorDetails: c.lenientString(AnyKey("errorDetails")),
            results: results
        )
    }
}

/// `{"operations": [...], "nextPaginationToken": "..."}`; an empty token means the last page.
struct WireOperationList: Decodable {
    var page: OperationPage

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        let operations = try c.decodeIfPresent([Listed].self, forKey: AnyKey("operations")) ?? []
        // Asked for search exports only; another type in the answer is never a candidate.
        page = OperationPage(operations: operations.filter { $0.type == nil || $0.type == "SEARCH_EXPORT" }.map(\.operation),
                             nextPageToken: WireSegmentList.nextPageToken(in: c))
    }

    /// One entry: the operation, and its type when the server says.
    struct Listed: Decodable {
        var type: String?
        var operation: ExportOperation

        init(from decoder: any Decoder) throws {
            type = try decoder.container(keyedBy: AnyKey.self).lenientString(AnyKey("type"))
            operation = try WireOperation(from: decoder).operation
        }
    }
}

struct WireExportResults: Decodable {
    var location: String
    var expires: Date?

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        guard let location = c.lenientString(AnyKey("location")), !location.isEmpty else {
            throw DecodingError.keyNotFound(AnyKey("location"), .init(codingPath: c.codingPath, debugDescription: ""))
        }
        self.location = location
        self.expires = c.lenientDate(AnyKey("expires"))
    }
}

/// `{"code": 400, "message": "..."}`, or whatever part of it the server sent.
struct WireError: Decodable {
    var message: String?

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        message = c.lenientString(AnyKey("message")) ?? c.lenientString(AnyKey("error"))
    }

    static func message(in body: Data) -> String? {
        guard !body.isEmpty else { return nil }
        if let decoded = try? JSONDecoder().decode(WireError.self, from: body), let message = decoded.message,
            !message.isEmpty
        {
            return message
        }
        // Not JSON: a proxy's HTML page, say. Show a little of it if it is short text.
        guard
            let text = String(data: body.prefix(200), encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
            !text.isEmpty, !text.hasPrefix("<")
        else { return nil }
        return text
    }
}

/// A one-line reason for a decoding failure, naming the field, never the whole dump.
func readableReason(_ error: any Error) -> String {
    guard let error = error as? DecodingError else { return "the body is not valid JSON" }
    func path(_ codingPath: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
        let keys = codingPath + (last.map { [$0] } ?? [])
        var text = ""
        for key in keys {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return text.isEmpty ? "the top level" : "'\(text)'"
    }
    switch error {
    case .keyNotFound(let key, let context):
        return "field \(path(context.codingPath, key)) is missing"
    case .typeMismatch(_, let context), .valueNotFound(_, let context):
        return "field \(path(context.codingPath)) has an unexpected type"
    case .dataCorrupted(let context):
        return context.codingPath.isEmpty
            ? "the body is not valid JSON" : "field \(path(context.codingPath)) is malformed"
    @unknown default:
        return "the body has an unexpected shape"
    }
}
