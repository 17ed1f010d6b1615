import Foundation

/// What an export contains, as parsed from a create request. It travels inside operation
/// ids, search export ids and download tokens, and it alone decides the exported bytes.
struct ExportSpec: Codable, Hashable, Sendable {
    enum Kind: String, Codable, Sendable {
        case individuals
        case events
    }

    enum Format: String, Codable, Sendable {
        case json
        case csv
        case ndjson
    }

    var segmentID: String
    var kind: Kind
    var format: Format
    /// Unix milliseconds, `[start, end)`.
    var start: Int64
    var end: Int64
    var segmentStart: Int64?
    var segmentEnd: Int64?
    var timezone: String?
    var fields: [String]?
    /// With late data (``EmulatorConfiguration/lateRate``): when the export was created,
    /// Unix milliseconds. Rows that had not arrived by then are not in it. Nil once every
    /// row of the range has arrived (and without late data).
    var asOf: Int64?

    enum CodingKeys: String, CodingKey {
        case segmentID = "g", kind = "k", format = "f", start = "s", end = "e"
        case segmentStart = "gs", segmentEnd = "ge", timezone = "z", fields = "fl", asOf = "a"
    }

    /// Used when a request has no time range: fixed, so the bytes never depend on the clock.
    static let defaultRange: (start: Int64, end: Int64) = (1_767_225_600_000, 1_767_312_000_000)  // 2026-01-01, one day

    /// A request the emulator refuses, with the message for the 400 (or 404) answer.
    struct Rejection: Error {
        var status: Int
        var message: String
    }

    /// Parses and checks a create-export body in `dialect`. Unknown fields are ignored.
    init(body: Data, dialect: EmulatorConfiguration.Dialect) throws(Rejection) {
        let json = try Self.object(body)
        guard let segmentID = json["segmentId"] as? String, !segmentID.isEmpty else {
            throw Rejection(status: 400, message: "segmentId is required and must be a non-empty string.")
        }
        self.segmentID = segmentID
        kind = try Self.kind(json["type"], dialect: dialect)
        format = try Self.format(json["format"], dialect: dialect)
        let range = try Self.range(json["timeRange"], name: "timeRange")
        start = range?.start ?? range?.end.map { $0 - 86_400_000 } ?? Self.defaultRange.start
        end = range?.end ?? range?.start.map { $0 + 86_400_000 } ?? Self.defaultRange.end
        if let segmentRange = try Self.range(json["segmentTimeRange"], name: "segmentTimeRange") {
            segmentStart = segmentRange.start
            segmentEnd = segmentRange.end
        }
        if dialect == .fullstory {
            timezone = try Self.timezone(json["timezone"])
            fields = try Self.fields(json["fields"])
        }
    }

    private static func object(_ body: Data) throws(Rejection) -> [String: Any] {
        do {
            guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
                throw Rejection(status: 400, message: "The request body must be a JSON object.")
            }
            return object
        } catch let rejection as Rejection {
            throw rejection
        } catch {
            throw Rejection(status: 400, message: "The request body is not valid JSON.")
        }
    }

    private static func kind(_ value: Any?, dialect: EmulatorConfiguration.Dialect) throws(Rejection) -> Kind {
        guard let raw = value as? String else { throw Rejection(status: 400, message: "type is required and must be a string.") }
        let types: [String: Kind] = dialect == .seed
            ? ["individuals": .individuals, "events": .events]
            : ["TYPE_INDIVIDUAL": .individuals, "TYPE_EVENT": .events]
        guard let kind = types[raw] else {
            throw Rejection(status: 400, message: "type must be one of \(types.keys.sorted().joined(separator: ", ")); got '\(raw.prefix(40))'.")
        }
        return kind
    }

    private static func format(_ value: Any?, dialect: EmulatorConfiguration.Dialect) throws(Rejection) -> Format {
        let formats: [String: Format] = dialect == .seed
            ? ["json": .json, "csv": .csv]
            : ["FORMAT_JSON": .json, "FORMAT_CSV": .csv, "FORMAT_NDJSON": .ndjson]
        let names = formats.keys.sorted().joined(separator: ", ")
        switch value {
        case nil where dialect == .seed:
            return .json
        case nil:
            throw Rejection(status: 400, message: "format is required (one of \(names)).")
        case let raw as String:
            guard let format = formats[raw] else { throw Rejection(status: 400, message: "format must be one of \(names); got '\(raw.prefix(40))'.") }
            return format
        default:
            throw Rejection(status: 400, message: "format must be a string.")
        }
    }

    private static func timezone(_ value: Any?) throws(Rejection) -> String? {
        switch value {
        case nil: return nil
        case let zone as String where TimeZone(identifier: zone) != nil: return zone
        default: throw Rejection(status: 400, message: "timezone must be an IANA time zone name such as UTC or Europe/Berlin.")
        }
    }

    private static func fields(_ value: Any?) throws(Rejection) -> [String]? {
        guard let value else { return nil }
        guard let names = value as? [String] else { throw Rejection(status: 400, message: "fields must be a list of strings.") }
        return names
    }

    private static func range(_ value: Any?, name: String) throws(Rejection) -> (start: Int64?, end: Int64?)? {
        guard let value else { return nil }
        guard let object = value as? [String: Any] else {
            throw Rejection(status: 400, message: "\(name) must be an object with start and end.")
        }
        func instant(_ key: String) throws(Rejection) -> Int64? {
            guard let raw = object[key] else { return nil }
            guard let text = raw as? String, let date = WireTime.parse(text) else {
                throw Rejection(
                    status: 400, message: "\(name).\(key) must be an RFC 3339 date-time such as 2026-01-01T00:00:00Z.")
            }
            return Int64((date.timeIntervalSince1970 * 1000).rounded())
        }
        let start = try instant("start")
        let end = try instant("end")
        if let start, let end, start >= end {
            throw Rejection(status: 400, message: "\(name).start must be before \(name).end.")
        }
        return (start, end)
    }
}

/// RFC 3339 in and out of the emulator.
enum WireTime {
    static func format(milliseconds: Int64) -> String {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            .formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    static func parse(_ text: String) -> Date? {
        // RFC 3339 allows a lower-case "t" and "z".
        let normalized = text.uppercased()
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(normalized) { return date }
        return try? Date.ISO8601FormatStyle().parse(normalized)
    }
}
