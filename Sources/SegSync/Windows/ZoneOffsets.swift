import Foundation

/// A time zone's UTC offsets over a range of instants, so that day arithmetic away from
/// a transition is integer arithmetic and `Calendar` is consulted only near one.
///
/// Built from `TimeZone.nextDaylightSavingTimeTransition(after:)`, then checked: every
/// stretch between two transitions must have one offset at both its ends. A zone that
/// changed its offset without reporting a transition fails the check, and the calendar
/// then does all the work.
struct ZoneOffsets: Sendable {
    /// Sorted instants (seconds since 1970) at which the offset changes.
    let transitions: [Double]
    /// `offsets[i]` is in force from `transitions[i - 1]` (or the range's start) on.
    let offsets: [Int]

    init?(_ zone: TimeZone, from start: Date, to end: Date) {
        var transitions: [Double] = []
        var offsets = [zone.secondsFromGMT(for: start)]
        var cursor = start
        while let next = zone.nextDaylightSavingTimeTransition(after: cursor), next < end, transitions.count < 10_000 {
            // The offset just before the transition must be the one recorded for the stretch.
            guard zone.secondsFromGMT(for: next.addingTimeInterval(-1)) == offsets.last else { return nil }
            transitions.append(next.timeIntervalSince1970)
            offsets.append(zone.secondsFromGMT(for: next))
            cursor = next
        }
        guard zone.secondsFromGMT(for: end) == offsets.last else { return nil }
        self.transitions = transitions
        self.offsets = offsets
    }

    /// How many transitions are at or before `t`.
    func index(_ t: Double) -> Int {
        var low = 0, high = transitions.count
        while low < high {
            let mid = (low + high) / 2
            if transitions[mid] <= t { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// The offset in force over all of `[from, to]`, or nil when a transition falls inside.
    func steadyOffset(from: Double, to: Double) -> Int? {
        let first = index(from)
        return index(to) == first ? offsets[first] : nil
    }
}
