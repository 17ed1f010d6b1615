import Foundation

/// The one way segsync writes and reads instants — on the wire, in state, lockfile and
/// logs: RFC 3339, UTC, `2026-11-28T00:00:00Z`.
///
/// Hand-rolled civil-date arithmetic rather than a formatter: it is exact, allocation-light
/// on the planner's hot path, and cannot vary with the machine's locale.
public enum Timestamp {
    /// `2026-11-28T00:00:00Z`, or with milliseconds when the instant has them. Rounded
    /// to the nearest millisecond, so an instant that went through a database's `double`
    /// (a last bit different) is written the same.
    public static func format(_ date: Date) -> String {
        let totalMillis = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var seconds = totalMillis.floorDiv(1000)
        let millis = Int(totalMillis - seconds * 1000)
        let days = seconds.floorDiv(86_400)
        seconds -= days * 86_400
        let (y, m, d) = civil(fromDays: days)
        let hh = Int(seconds / 3600), mm = Int(seconds % 3600 / 60), ss = Int(seconds % 60)
        guard (0...9999).contains(y) else {
            var text = "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(hh, 2)):\(pad(mm, 2)):\(pad(ss, 2))"
            if millis != 0 { text += ".\(pad(millis, 3))" }
            return text + "Z"
        }
        // Written byte by byte: this runs for every partition of every plan.
        return String(unsafeUninitializedCapacity: 24) { buffer in
            var i = 0
            func put(_ value: Int, _ width: Int) {
                var value = value
                for position in stride(from: i + width - 1, through: i, by: -1) {
                    buffer[position] = UInt8(48 + value % 10)
                    value /= 10
                }
                i += width
            }
            func put(_ byte: Character) {
                buffer[i] = byte.asciiValue!
                i += 1
            }
            put(y, 4); put("-"); put(m, 2); put("-"); put(d, 2); put("T")
            put(hh, 2); put(":"); put(mm, 2); put(":"); put(ss, 2)
            if millis != 0 { put("."); put(millis, 3) }
            put("Z")
            return i
        }
    }

    /// Parses RFC 3339 (`Z` or `±hh:mm`, optional fraction). Nil when the text is not one.
    public static func parse(_ text: String) -> Date? {
        let b = Array(text.utf8)
        func digits(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= b.count else { return nil }
            var value = 0
            for i in start..<(start + count) {
                guard b[i] >= 48, b[i] <= 57 else { return nil }
                value = value * 10 + Int(b[i] - 48)
            }
            return value
        }
        guard b.count >= 20,
              let y = digits(0, 4), b[4] == UInt8(ascii: "-"),
              let mo = digits(5, 2), b[7] == UInt8(ascii: "-"),
              let d = digits(8, 2), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "),
              let h = digits(11, 2), b[13] == UInt8(ascii: ":"),
              let mi = digits(14, 2), b[16] == UInt8(ascii: ":"),
              let s = digits(17, 2),
              (1...12).contains(mo), (1...daysIn(month: mo, year: y)).contains(d),
              h < 24, mi < 60, s < 61
        else { return nil }
        var i = 19
        var fraction = 0.0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                fraction += Double(b[i] - 48) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard let oh = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"), let om = digits(i + 4, 2),
                  oh < 24, om < 60 else { return nil }
            offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = Self.days(fromCivil: y, mo, d)
        let seconds = Double(days * 86_400 + Int64(h * 3600 + mi * 60 + min(s, 59) - offset)) + fraction
        return Date(timeIntervalSince1970: seconds)
    }

    /// A calendar date, `2026-11-26`, as the user wrote it: midnight of that day in `zone`.
    public static func parseDay(_ text: String, in zone: TimeZone) -> Date? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]),
              (1...12).contains(m), (1...daysIn(month: m, year: y)).contains(d)
        else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar.date(from: DateComponents(year: y, month: m, day: d))
    }

    /// The calendar date of an instant in UTC: `2026-11-26`.
    public static func day(_ date: Date) -> String {
        String(format(date).prefix(10))
    }

    /// `2026-11-26` for a day number (days since 1970-01-01).
    public static func date(days: Int64) -> String {
        let (y, m, d) = civil(fromDays: days)
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))"
    }

    /// `value` with leading zeros to `width` digits (`pad(7, 2)` is `07`).
    public static func pad(_ value: some BinaryInteger, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    /// Days in a month of the proleptic Gregorian calendar.
    public static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    /// Days since 1970-01-01 of a calendar date.
    public static func days(fromCivil year: Int, _ month: Int, _ day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month), d = Int64(day)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The calendar date (year, month, day) of a day since 1970-01-01.
    public static func civil(fromDays days: Int64) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(m <= 2 ? y + 1 : y), Int(m), Int(d))
    }
}

extension Int64 {
    fileprivate func floorDiv(_ divisor: Int64) -> Int64 {
        let q = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? q - 1 : q
    }
}
