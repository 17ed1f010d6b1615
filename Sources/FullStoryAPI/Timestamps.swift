import Foundation

/// RFC 3339 on the wire: what the API sends and what this client sends back.
enum RFC3339 {
    /// `2026-11-27T13:00:00Z`, with milliseconds only when there are some.
    static func format(_ date: Date) -> String {
        let whole = date.timeIntervalSince1970.rounded(.down)
        if date.timeIntervalSince1970 - whole >= 0.0005 {
            return date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        }
        return Date(timeIntervalSince1970: whole).formatted(Date.ISO8601FormatStyle())
    }

    /// Accepts fractional seconds or none, `Z` or a numeric offset.
    static func parse(_ text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        return nil
    }
}
