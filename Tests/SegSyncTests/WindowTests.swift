import Foundation
import SegSyncVocabulary
import Testing
@testable import SegSync

@Suite(.timeLimit(.minutes(2))) struct WindowTests {
    static let newYork = TimeZone(identifier: "America/New_York")!
    static let utc = TimeZone(identifier: "UTC")!

    func export(every: String, extent: WindowSpec.Extent, settle: String = "0", zone: TimeZone = utc) -> ExportSpec {
        let span = Span(every)!
        return ExportSpec(
            name: "e", segment: "s", type: .events, format: .json,
            window: WindowSpec(every: span, cadence: Cadence(span)!, extent: extent, settle: settle == "0" ? Span() : Span(settle)!),
            timeZone: zone)
    }

    func date(_ text: String) -> Date { Timestamp.parse(text)! }

    @Test("calendar days in New York are 23 h and 25 h on DST changes")
    func dstDays() throws {
        let spec = export(every: "1d", extent: .start(date("2026-03-07T05:00:00Z")), zone: Self.newYork)
        let march = try DesiredPartitions.partitions(of: spec, dialect: .seed, now: date("2026-03-10T12:00:00Z"))
        #expect(march.map(\.label) == ["2026-03-07", "2026-03-08", "2026-03-09"])
        #expect(march.map { $0.end.timeIntervalSince($0.start) / 3600 } == [24, 23, 24])

        let fall = export(every: "1d", extent: .start(date("2026-10-31T04:00:00Z")), zone: Self.newYork)
        let november = try DesiredPartitions.partitions(of: fall, dialect: .seed, now: date("2026-11-03T12:00:00Z"))
        #expect(november.map(\.label) == ["2026-10-31", "2026-11-01", "2026-11-02"])
        #expect(november.map { $0.end.timeIntervalSince($0.start) / 3600 } == [24, 25, 24])
    }

    @Test("hourly partitions neither repeat nor skip across DST changes", arguments: [
        ("2026-03-07T05:00:00Z", "2026-03-10T05:00:00Z"),
        ("2026-10-31T04:00:00Z", "2026-11-03T05:00:00Z"),
    ])
    func hourlyAcrossDST(from: String, to: String) throws {
        let spec = export(every: "1h", extent: .start(date(from)), zone: Self.newYork)
        let parts = try DesiredPartitions.partitions(of: spec, dialect: .seed, now: date(to))
        #expect(parts.first?.start == date(from))
        #expect(parts.last?.end == date(to))
        for (a, b) in zip(parts, parts.dropFirst()) {
            #expect(a.end == b.start)
            #expect(b.end.timeIntervalSince(b.start) == 3600)
        }
        #expect(Set(parts.map(\.start)).count == parts.count)
        #expect(Set(parts.map(\.label)).count == parts.count)
        #expect(parts.count == Int(date(to).timeIntervalSince(date(from)) / 3600))
    }

    @Test("6-hour partitions on DST days: four a day, the last one 5 h or 7 h long")
    func sixHourDST() throws {
        for (from, lengths) in [("2026-03-08T05:00:00Z", [6.0, 6, 6, 5]), ("2026-11-01T04:00:00Z", [6.0, 6, 6, 7])] {
            let start = date(from)
            let spec = export(every: "6h", extent: .start(start), zone: Self.newYork)
            let parts = try DesiredPartitions.partitions(of: spec, dialect: .seed, now: start.addingTimeInterval(23 * 3600 + lengths.last! * 3600 - 5 * 3600 + 3600))
            #expect(Array(parts.prefix(4)).map { $0.end.timeIntervalSince($0.start) / 3600 } == lengths)
            let calendar = PartitionCalendar(cadence: .subDay(minutes: 360), timeZone: Self.newYork)
            for part in parts { #expect(calendar.floor(part.end.addingTimeInterval(-1)) == part.start) }
        }
    }

    @Test("partitions are aligned to local boundaries in their time zone")
    func alignment() throws {
        let kolkata = TimeZone(identifier: "Asia/Kolkata")!
        let spec = export(every: "1d", extent: .last(Span(days: 3)), zone: kolkata)
        let parts = try DesiredPartitions.partitions(of: spec, dialect: .seed, now: date("2026-11-28T10:00:00Z"))
        #expect(parts.map { Timestamp.format($0.start) } == ["2026-11-24T18:30:00Z", "2026-11-25T18:30:00Z", "2026-11-26T18:30:00Z"])
        #expect(parts.map(\.label) == ["2026-11-25", "2026-11-26", "2026-11-27"])

        let quarter = export(every: "15m", extent: .last(Span(hours: 1)))
        let q = try DesiredPartitions.partitions(of: quarter, dialect: .seed, now: date("2026-11-28T10:07:00Z"))
        #expect(q.map(\.label) == ["2026-11-28T09:00Z", "2026-11-28T09:15Z", "2026-11-28T09:30Z", "2026-11-28T09:45Z"])
    }

    @Test("weeks start on Monday")
    func weeks() throws {
        let spec = export(every: "1w", extent: .last(Span(weeks: 2)))
        let parts = try DesiredPartitions.partitions(of: spec, dialect: .seed, now: date("2026-11-28T10:00:00Z"))  // a Saturday
        #expect(parts.map(\.label) == ["2026-11-09", "2026-11-16"])
        #expect(parts.allSatisfy { $0.end.timeIntervalSince($0.start) == 7 * 86_400 })
    }

    @Test("only closed, settled partitions: end + settle <= now")
    func closedOnly() throws {
        let spec = export(every: "1d", extent: .last(Span(days: 2)), settle: "24h")
        let justBefore = try DesiredPartitions.partitions(of: spec, dialect: .seed, now: date("2026-11-28T23:59:59Z"))
        #expect(justBefore.map(\.label) == ["2026-11-25", "2026-11-26"])
        let atBoundary = try DesiredPartitions.partitions(of: spec, dialect: .seed, now: date("2026-11-29T00:00:00Z"))
        #expect(atBoundary.map(\.label) == ["2026-11-26", "2026-11-27"])
        for part in atBoundary { #expect(part.end.addingTimeInterval(86_400) <= date("2026-11-29T00:00:00Z")) }
    }

    @Test("last gives exactly that many partitions, whatever the moment", arguments: [
        "2026-03-08T07:30:00Z", "2026-11-01T06:10:00Z", "2026-06-15T00:00:00Z", "2026-12-31T23:59:59Z",
    ])
    func lastCount(now: String) throws {
        let daily = export(every: "1d", extent: .last(Span(days: 30)), settle: "24h", zone: Self.newYork)
        #expect(try DesiredPartitions.partitions(of: daily, dialect: .seed, now: date(now)).count == 30)
        let hourly = export(every: "1h", extent: .last(Span(hours: 12)), settle: "2h", zone: Self.newYork)
        #expect(try DesiredPartitions.partitions(of: hourly, dialect: .seed, now: date(now)).count == 12)
    }

    @Test("start pins the first partition; the window grows as time passes")
    func start() throws {
        let spec = export(every: "1d", extent: .start(date("2026-11-20T00:00:00Z")), settle: "24h")
        let a = try DesiredPartitions.partitions(of: spec, dialect: .seed, now: date("2026-11-28T00:00:00Z"))
        let b = try DesiredPartitions.partitions(of: spec, dialect: .seed, now: date("2026-11-29T00:00:00Z"))
        #expect(a.first?.label == "2026-11-20")
        #expect(a.count == 7)
        #expect(b.count == 8)
        #expect(Array(b.prefix(7)) == a)
    }

    @Test("fingerprints change with anything that changes the bytes, and only then")
    func fingerprints() throws {
        let now = date("2026-11-28T00:00:00Z")
        let base = export(every: "1d", extent: .last(Span(days: 1)))
        let original = try DesiredPartitions.partitions(of: base, dialect: .seed, now: now)[0].fingerprint
        var csv = base
        csv.format = .csv
        var segment = base
        segment.segment = "other"
        var windowed = base
        windowed.segmentWindow = Span(days: 90)
        var renamedPrune = base
        renamedPrune.prune = true
        #expect(try DesiredPartitions.partitions(of: csv, dialect: .seed, now: now)[0].fingerprint != original)
        #expect(try DesiredPartitions.partitions(of: segment, dialect: .seed, now: now)[0].fingerprint != original)
        #expect(try DesiredPartitions.partitions(of: windowed, dialect: .seed, now: now)[0].fingerprint != original)
        #expect(try DesiredPartitions.partitions(of: base, dialect: .fullstory, now: now)[0].fingerprint != original)
        #expect(try DesiredPartitions.partitions(of: renamedPrune, dialect: .seed, now: now)[0].fingerprint == original)
    }

    @Test("too many partitions is refused")
    func tooMany() {
        let spec = export(every: "1m", extent: .start(date("2000-01-01T00:00:00Z")))
        #expect(throws: PartitionLimitExceeded.self) { try DesiredPartitions.partitions(of: spec, dialect: .seed, now: date("2026-01-01T00:00:00Z")) }
    }

    @Test("timestamps round-trip and reject malformed text")
    func timestamps() {
        #expect(Timestamp.format(date("2026-11-28T01:02:03Z")) == "2026-11-28T01:02:03Z")
        #expect(Timestamp.format(date("2026-11-28T01:02:03.250+01:00")) == "2026-11-28T00:02:03.250Z")
        #expect(Timestamp.format(date("1969-12-31T23:59:59Z")) == "1969-12-31T23:59:59Z")
        for bad in ["2026-11-28", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-28T00:00:00", "x"] {
            #expect(Timestamp.parse(bad) == nil)
        }
    }

    /// Zones with every kind of transition: none, DST at 02:00 and at midnight, a 30-minute
    /// DST, odd offsets, and a day skipped at the date line (Samoa, 2011-12-30).
    static let zones = ["UTC", "America/New_York", "Europe/London", "America/Sao_Paulo", "Australia/Lord_Howe",
                        "Asia/Kathmandu", "Pacific/Apia", "Asia/Tehran", "America/Havana", "Africa/Casablanca"]

    @Test("integer arithmetic cuts exactly the partitions Calendar does, in every kind of zone", arguments: zones)
    func arithmeticMatchesCalendar(_ identifier: String) throws {
        let zone = try #require(TimeZone(identifier: identifier))
        // The arithmetic is in use: the zone's transitions are known (none for UTC).
        let offsets = try #require(ZoneOffsets(zone, from: date("2010-01-01T00:00:00Z"), to: date("2013-01-01T00:00:00Z")), "\(identifier)")
        #expect(offsets.transitions.isEmpty == ["UTC", "Asia/Kathmandu"].contains(identifier), "\(identifier): \(offsets.transitions.count) transitions")
        for (every, from, to) in [("1d", "2010-01-01T00:00:00Z", "2013-06-01T00:00:00Z"), ("1w", "2008-01-01T00:00:00Z", "2016-01-01T00:00:00Z"),
                                  ("1h", "2011-03-01T00:00:00Z", "2011-12-31T23:00:00Z"), ("15m", "2026-03-01T00:00:00Z", "2026-04-15T00:00:00Z"),
                                  ("6h", "2018-01-01T00:00:00Z", "2019-12-31T00:00:00Z")] {
            let spec = export(every: every, extent: .start(date(from)), zone: zone)
            let fast = try DesiredPartitions.partitions(of: spec, dialect: .seed, endpoint: "e", now: date(to), arithmetic: true)
            let reference = try DesiredPartitions.partitions(of: spec, dialect: .seed, endpoint: "e", now: date(to), arithmetic: false)
            #expect(fast.count == reference.count, "\(identifier) every \(every)")
            let first = zip(fast, reference).first { $0 != $1 }
            #expect(first == nil, "\(identifier) every \(every): \(String(describing: first))")
        }
    }
}
