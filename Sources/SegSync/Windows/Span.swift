import Foundation
import SegSyncVocabulary

/// A length of time as a user writes it in the manifest: `15m`, `1h`, `1d`, `1w`, `1d12h`.
///
/// Weeks and days are calendar units (a day is 23 or 25 hours across a DST change);
/// hours and minutes are exact. Keeping them apart is what makes `last: 30d` mean
/// "the same wall-clock time 30 days ago".
public struct Span: Sendable, Hashable, CustomStringConvertible {
    public var weeks = 0
    public var days = 0
    public var hours = 0
    public var minutes = 0

    public init(weeks: Int = 0, days: Int = 0, hours: Int = 0, minutes: Int = 0) {
        self.weeks = weeks
        self.days = days
        self.hours = hours
        self.minutes = minutes
    }

    /// Parses `1d12h`-style text: one or more `<n><unit>` with units w, d, h, m, each at
    /// most once and largest first. Nil for anything else, including zero.
    public init?(_ text: String) {
        let order: [Character] = ["w", "d", "h", "m"]
        var lastUnit = -1
        var number = ""
        guard !text.isEmpty else { return nil }
        for character in text {
            if character.isASCII, character.isNumber {
                number.append(character)
                continue
            }
            guard let unit = order.firstIndex(of: character), unit > lastUnit,
                  !number.isEmpty, number.count <= 6, let value = Int(number) else { return nil }
            switch character {
            case "w": weeks = value
            case "d": days = value
            case "h": hours = value
            default: minutes = value
            }
            lastUnit = unit
            number = ""
        }
        guard number.isEmpty, weeks + days + hours + minutes > 0 else { return nil }
    }

    /// Zero: `settle: 0`.
    public var isZero: Bool { weeks == 0 && days == 0 && hours == 0 && minutes == 0 }

    /// The exact part in seconds (hours and minutes).
    var exactSeconds: TimeInterval { TimeInterval(hours * 3600 + minutes * 60) }

    /// Whole calendar days (weeks included).
    var calendarDays: Int { weeks * 7 + days }

    /// Nominal length, for comparisons and messages only (a day counted as 24 h).
    public var nominalSeconds: TimeInterval { TimeInterval(calendarDays * 86_400) + exactSeconds }

    public var description: String {
        var text = ""
        if weeks > 0 { text += "\(weeks)w" }
        if days > 0 { text += "\(days)d" }
        if hours > 0 { text += "\(hours)h" }
        if minutes > 0 { text += "\(minutes)m" }
        return text
    }

    /// `date + self` (or `- self` when `sign` is -1) in `calendar`'s time zone.
    func advance(_ date: Date, sign: Int = 1, in calendar: Calendar) -> Date {
        var result = date
        if calendarDays != 0 {
            result = calendar.date(byAdding: .day, value: sign * calendarDays, to: result) ?? result
        }
        return result.addingTimeInterval(Double(sign) * exactSeconds)
    }
}

extension Span {
    /// A command-line duration (`--max-wait`, `--lock-timeout`): manifest-style spans
    /// (`30m`, `1h30m`), seconds (`90s`), or zero (`0`, `0m`). Nil for anything else.
    public static func duration(_ text: String) -> Duration? {
        if NameRules.isZero(text, units: "wdhms") { return .zero }
        if text.hasSuffix("s"), let seconds = Int(text.dropLast()), seconds >= 0 { return .seconds(seconds) }
        return Span(text).map { .seconds(Int($0.nominalSeconds)) }
    }

    /// `90s`, `10m`, `1h30m`: a duration the way ``duration(_:)`` reads it.
    public static func describe(_ duration: Duration) -> String {
        let seconds = Int(duration.components.seconds)
        if seconds < 60 || seconds % 60 != 0 { return "\(seconds)s" }
        return Span(hours: seconds / 3600, minutes: seconds % 3600 / 60).description
    }

    /// A duration for a progress display, to the second under an hour: `45s`, `3m05s`, `1h20m`.
    public static func approximate(seconds: Double) -> String {
        let total = max(0, Int(seconds.rounded()))
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m" + Timestamp.pad(total % 60, 2) + "s" }
        return "\(total / 3600)h" + Timestamp.pad(total % 3600 / 60, 2) + "m"
    }
}
