import Foundation
import SegSyncVocabulary
import FullStoryContract

/// HTTP-dates (RFC 9110 §5.6.7), as `Retry-After` may carry them: the preferred
/// IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT` and the obsolete RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`) forms.
///
/// Parsed by hand, like ``Timestamp``: Foundation's `DateFormatter` traps on some
/// non-ASCII input (a two-character header, `S` and a combining mark, killed segsync;
/// found by `Fuzz/run`), and a header is the server's text.
enum HTTPDate {
    static func parse(_ text: String) -> Date? {
        guard text.utf8.count <= 64, text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
        let words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let day: Int, month: Int, year: Int, clock: String
        switch words.count {
        case 6 where words[0].hasSuffix(",") && words[5] == "GMT":  // IMF-fixdate
            guard let d = Int(words[1]), let m = months[words[2]], let y = Int(words[3]), words[3].count == 4 else { return nil }
            (day, month, year, clock) = (d, m, y, words[4])
        case 4 where words[0].hasSuffix(",") && words[3] == "GMT":  // RFC 850
            let parts = words[1].split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3, let d = Int(parts[0]), let m = months[parts[1]], let yy = Int(parts[2]), parts[2].count == 2
            else { return nil }
            // Two-digit years: RFC 9110 reads those more than 50 years ahead as the past.
            (day, month, year, clock) = (d, m, yy < 70 ? 2000 + yy : 1900 + yy, words[2])
        case 5:  // asctime
            guard let m = months[words[1]], let d = Int(words[2]), let y = Int(words[4]), words[4].count == 4 else { return nil }
            (day, month, year, clock) = (d, m, y, words[3])
        default:
            return nil
        }
        let time = clock.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
        guard time.count == 3, clock.count == 8, let hour = time[0], let minute = time[1], let second = time[2],
              (0..<24).contains(hour), (0..<60).contains(minute), (0...60).contains(second),
              (1...Timestamp.daysIn(month: month, year: year)).contains(day)
        else { return nil }
        let days = Timestamp.days(fromCivil: year, month, day)
        return Date(timeIntervalSince1970: Double(days * 86_400 + Int64(hour * 3600 + minute * 60 + min(second, 59))))
    }

    private static let months: [String: Int] = [
        "Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
    ]
}
