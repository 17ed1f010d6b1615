import Foundation
import SegSyncVocabulary

/// How long each partition is: a divisor of a day, a calendar day, or an ISO week.
public enum Cadence: Sendable, Hashable {
    /// Fixed-length slices of a local calendar day, in minutes (the length divides 1440).
    case subDay(minutes: Int)
    case day
    /// ISO weeks, Monday to Monday.
    case week

    /// The cadence for a manifest's `every`, or nil when segsync cannot align it.
    public init?(_ span: Span) {
        if span.weeks == 1, span.days == 0, span.hours == 0, span.minutes == 0 {
            self = .week
        } else if span.weeks == 0, span.days == 7, span.hours == 0, span.minutes == 0 {
            self = .week
        } else if span.weeks == 0, span.days == 1, span.hours == 0, span.minutes == 0 {
            self = .day
        } else if span.calendarDays == 0 {
            let minutes = span.hours * 60 + span.minutes
            guard minutes > 0, minutes <= 1440, 1440 % minutes == 0 else { return nil }
            self = minutes == 1440 ? .day : .subDay(minutes: minutes)
        } else {
            return nil
        }
    }
}

/// A manifest's `window`: the cadence, how far back, and how long data must settle.
public struct WindowSpec: Sendable, Hashable {
    /// How far back the window reaches.
    public enum Extent: Sendable, Hashable {
        /// A rolling length ending at the newest settled boundary.
        case last(Span)
        /// A fixed first partition (a backfill).
        case start(Date)
    }

    public var every: Span
    public var cadence: Cadence
    public var extent: Extent
    public var settle: Span
    /// How long after a partition's end its data is final: a file from an export created
    /// earlier is provisional, and exported once more when `end + final` has passed.
    /// Defaults to ``settle`` (every export is final).
    public var final: Span

    public init(every: Span, cadence: Cadence, extent: Extent, settle: Span, final: Span? = nil) {
        self.every = every
        self.cadence = cadence
        self.extent = extent
        self.settle = settle
        self.final = final ?? settle
    }

    /// Whether `final` asks for more than `settle`: exports made between the two are
    /// provisional.
    public var hasProvisional: Bool { final.nominalSeconds > settle.nominalSeconds }
}

/// Partition boundaries of one cadence in one time zone.
///
/// Boundaries are computed from local calendar days, so a daily partition is a calendar
/// day (23 h or 25 h on a DST change) and sub-day partitions are exact slices of a day
/// that never repeat nor skip across a change; none crosses a local midnight.
public struct PartitionCalendar: Sendable {
    public let cadence: Cadence
    public let calendar: Calendar
    /// The zone's offsets over the range being planned (``covering(from:to:)``): days with
    /// no transition near them are then computed without `Calendar`.
    var offsets: ZoneOffsets?

    /// This calendar with the zone's offsets over `[from, to]` known (a week of margin each
    /// side), so boundaries away from a transition are integer arithmetic.
    func covering(from: Date, to: Date) -> PartitionCalendar {
        var copy = self
        copy.offsets = ZoneOffsets(calendar.timeZone, from: from.addingTimeInterval(-8 * 86_400), to: to.addingTimeInterval(8 * 86_400))
        return copy
    }

    public init(cadence: Cadence, timeZone: TimeZone) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        calendar.firstWeekday = 2
        calendar.minimumDaysInFirstWeek = 4
        self.cadence = cadence
        self.calendar = calendar
    }

    func startOfDay(_ date: Date) -> Date {
        let t = date.timeIntervalSince1970
        if let offset = offsets?.steadyOffset(from: t - 2 * 86_400, to: t + 2 * 86_400) {
            let local = t + Double(offset)
            return Date(timeIntervalSince1970: (local / 86_400).rounded(.down) * 86_400 - Double(offset))
        }
        return calendar.startOfDay(for: date)
    }

    func nextDay(after dayStart: Date) -> Date {
        let t = dayStart.timeIntervalSince1970
        if offsets?.steadyOffset(from: t - 86_400, to: t + 2 * 86_400) != nil {
            return Date(timeIntervalSince1970: t + 86_400)
        }
        // Noon avoids landing on a nonexistent local midnight.
        let noon = dayStart.addingTimeInterval(12 * 3600)
        return startOfDay(calendar.date(byAdding: .day, value: 1, to: noon) ?? noon.addingTimeInterval(86_400))
    }

    /// The boundary at or before `date`.
    public func floor(_ date: Date) -> Date {
        switch cadence {
        case .day:
            return startOfDay(date)
        case .week:
            let day = startOfDay(date)
            let weekday = calendar.component(.weekday, from: day)  // 1 = Sunday
            let back = (weekday + 5) % 7
            guard back > 0 else { return day }
            let noon = day.addingTimeInterval(12 * 3600)
            return startOfDay(calendar.date(byAdding: .day, value: -back, to: noon) ?? noon)
        case .subDay(let minutes):
            let day = startOfDay(date)
            let step = TimeInterval(minutes * 60)
            let k = min((date.timeIntervalSince(day) / step).rounded(.down), Double(slices(of: day, step: step) - 1))
            return day.addingTimeInterval(k * step)
        }
    }

    /// How many sub-day partitions a local day has: its length over the step, rounded, so
    /// a DST day's last partition is shorter or longer instead of a sliver being added.
    func slices(of dayStart: Date, step: TimeInterval) -> Int {
        max(1, Int((nextDay(after: dayStart).timeIntervalSince(dayStart) / step).rounded()))
    }

    /// The boundary after `boundary`.
    public func next(_ boundary: Date) -> Date {
        switch cadence {
        case .day:
            return nextDay(after: boundary)
        case .week:
            var day = boundary
            for _ in 0..<7 { day = nextDay(after: day) }
            return day
        case .subDay(let minutes):
            let day = startOfDay(boundary)
            let step = TimeInterval(minutes * 60)
            let index = Int((boundary.timeIntervalSince(day) / step).rounded())
            return index + 1 < slices(of: day, step: step) ? day.addingTimeInterval(Double(index + 1) * step) : nextDay(after: day)
        }
    }

    /// The local date of a day's start, `2026-11-26`, by integer arithmetic away from a
    /// transition and by the calendar near one.
    func localDate(of dayStart: Date) -> String {
        let t = dayStart.timeIntervalSince1970
        if let offset = offsets?.steadyOffset(from: t - 86_400, to: t + 86_400) {
            return Timestamp.date(days: Int64(((t + Double(offset)) / 86_400).rounded(.down)))
        }
        let parts = calendar.dateComponents([.year, .month, .day], from: dayStart)
        return "\(Timestamp.pad(parts.year!, 4))-\(Timestamp.pad(parts.month!, 2))-\(Timestamp.pad(parts.day!, 2))"
    }

    /// The boundary before `boundary`.
    public func previous(_ boundary: Date) -> Date {
        floor(boundary.addingTimeInterval(-1))
    }
}

/// One slice of one export: the unit segsync creates, downloads and records.
public struct Partition: Sendable, Hashable {
    public var export: String
    public var start: Date
    public var end: Date
    /// A human label: `2026-11-26` for days and weeks (local date), `2026-11-27T13:00Z` below a day.
    public var label: String
    /// A hash of everything that changes the exported bytes.
    public var fingerprint: String

    public init(export: String, start: Date, end: Date, label: String, fingerprint: String) {
        self.export = export
        self.start = start
        self.end = end
        self.label = label
        self.fingerprint = fingerprint
    }

    /// The identity in state: export name and partition start.
    public var key: PartitionKey { PartitionKey(export: export, start: start) }
}

/// (export name, partition start): how state, lockfile and plan name a partition.
public struct PartitionKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var export: String
    public var start: Date

    public init(export: String, start: Date) {
        self.export = export
        self.start = start
    }

    public static func < (a: PartitionKey, b: PartitionKey) -> Bool {
        (a.export, a.start) < (b.export, b.start)
    }

    /// `checkout-events@2026-11-27T13:00:00Z`, the key in state.
    public var description: String { "\(export)@\(Timestamp.format(start))" }

    public init?(_ text: String) {
        guard let at = text.lastIndex(of: "@"), let start = Timestamp.parse(String(text[text.index(after: at)...])) else { return nil }
        self.init(export: String(text[..<at]), start: start)
    }
}
