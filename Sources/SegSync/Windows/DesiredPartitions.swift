import Crypto
import Foundation
import SegSyncVocabulary

/// The partitions a manifest desires at a given moment: closed ones only, inside each
/// export's window. A pure function of (export, dialect, now).
public enum DesiredPartitions {
    /// More than this many partitions for one export is almost certainly a mistake
    /// (`every: 1m` with a years-old `start`), so it is refused rather than planned.
    public static let limitPerExport = 200_000

    /// The newest boundary `E` with `E + settle <= now`.
    public static func newestSettledBoundary(_ window: WindowSpec, calendar: PartitionCalendar, now: Date) -> Date {
        var boundary = calendar.floor(window.settle.advance(now, sign: -1, in: calendar.calendar))
        while window.settle.advance(boundary, in: calendar.calendar) > now {
            boundary = calendar.previous(boundary)
        }
        return boundary
    }

    /// The closed partitions `export`'s window wants at `now`, oldest first, each with its
    /// fingerprint (which depends on the dialect and the endpoint). Throws when the window
    /// has more partitions than a plan may hold.
    public static func partitions(of export: ExportSpec, dialect: Dialect, endpoint: String = APISettings.defaultEndpoint, now: Date) throws -> [Partition] {
        try partitions(of: export, dialect: dialect, endpoint: endpoint, now: now, arithmetic: true)
    }

    /// With `arithmetic: false` every boundary comes from `Calendar`: the reference the
    /// integer arithmetic is tested against.
    static func partitions(of export: ExportSpec, dialect: Dialect, endpoint: String, now: Date, arithmetic: Bool) throws -> [Partition] {
        var (calendar, first, end) = try bounds(of: export, now: now)
        if arithmetic { calendar = calendar.covering(from: first, to: end) }
        let base = FingerprintBase(export: export, dialect: dialect, endpoint: endpoint)
        var result: [Partition] = []
        result.reserveCapacity(max(0, Int(end.timeIntervalSince(first) / max(1, export.window.every.nominalSeconds)) + 1))
        var boundary = first
        while boundary < end {
            let next = calendar.next(boundary)
            result.append(Partition(
                export: export.name, start: boundary, end: next,
                label: label(start: boundary, calendar: calendar),
                fingerprint: base.fingerprint(start: boundary, end: next, calendar: calendar.calendar)))
            boundary = next
        }
        return result
    }

    /// The window's first and end boundaries at `now`; throws when it would cut more than
    /// ``limitPerExport`` partitions. What `validate` checks, without cutting them.
    static func bounds(of export: ExportSpec, now: Date) throws -> (PartitionCalendar, first: Date, end: Date) {
        let calendar = PartitionCalendar(cadence: export.window.cadence, timeZone: export.timeZone)
        let end = newestSettledBoundary(export.window, calendar: calendar, now: now)
        let first: Date
        switch export.window.extent {
        case .last(let span): first = calendar.floor(span.advance(end, sign: -1, in: calendar.calendar))
        case .start(let date): first = calendar.floor(date)
        }
        let nominal = max(1, export.window.every.nominalSeconds)
        if end.timeIntervalSince(first) / nominal > Double(limitPerExport) {
            let hint: String
            switch export.window.extent {
            case .last: hint = "use a longer 'every' or a shorter 'last'"
            case .start: hint = "use a longer 'every' or a later 'start'"
            }
            throw PartitionLimitExceeded(export: export.name, location: export.location,
                                         message: "export '\(export.name)' would have more than \(limitPerExport) partitions; \(hint)")
        }
        return (calendar, first, end)
    }

    /// `2026-11-26` (local date) for days and weeks, `2026-11-27T13:00Z` below a day.
    static func label(start: Date, calendar: PartitionCalendar) -> String {
        switch calendar.cadence {
        case .day, .week:
            return calendar.localDate(of: start)
        case .subDay:
            let text = Timestamp.format(start)
            return String(text.prefix(16)) + "Z"
        }
    }

    /// The segment membership range sent with an export, if the export sets one.
    public static func segmentTimeRange(_ export: ExportSpec, partitionEnd: Date) -> (start: Date, end: Date)? {
        guard let span = export.segmentWindow else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = export.timeZone
        return (span.advance(partitionEnd, sign: -1, in: calendar), partitionEnd)
    }
}

/// A window that would cut more than ``DesiredPartitions/limitPerExport`` partitions.
struct PartitionLimitExceeded: Error {
    var export: String
    var location: SourceLocation
    var message: String
}

extension Manifest {
    /// The partitions `export` desires at `now`, fingerprinted with this manifest's API
    /// settings. A window too long to plan is a manifest problem, reported at the export.
    public func partitions(of export: ExportSpec, now: Date) throws -> [Partition] {
        do {
            return try DesiredPartitions.partitions(of: export, dialect: api.dialect, endpoint: api.endpoint, now: now)
        } catch let limit as PartitionLimitExceeded {
            throw DiagnosticsError([Diagnostic(.error, file: file, at: limit.location, limit.message)])
        }
    }

    /// Checks that every export's window can be planned at `now` (not too many
    /// partitions), without cutting the partitions: `segsync validate`.
    public func checkWindows(now: Date) throws {
        var diagnostics: [Diagnostic] = []
        for export in exports {
            do {
                _ = try DesiredPartitions.bounds(of: export, now: now)
            } catch let limit as PartitionLimitExceeded {
                diagnostics.append(Diagnostic(.error, file: file, at: limit.location, limit.message))
            }
        }
        if !diagnostics.isEmpty { throw DiagnosticsError(diagnostics) }
    }
}

/// Everything about an export that changes the exported bytes (``ExportParameters/settings``),
/// hashed per partition with its time ranges.
struct FingerprintBase {
    let prefix: String
    let prefixBytes: [UInt8]
    let segmentWindow: Span?

    init(export: ExportSpec, dialect: Dialect, endpoint: String) {
        prefix = ExportParameters(export, dialect: dialect, endpoint: endpoint).fingerprintPrefix
        prefixBytes = Array(prefix.utf8)
        segmentWindow = export.segmentWindow
    }

    /// The first 16 bytes of SHA-256 over the prefix and the ranges, in hex. Hashed
    /// piece by piece: the same bytes as the joined text, without building it.
    func fingerprint(start: Date, end: Date, calendar: Calendar) -> String {
        var hasher = SHA256()
        hasher.update(data: prefixBytes)
        func feed(_ text: String) {
            var text = text
            text.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        }
        let formattedEnd = Timestamp.format(end)
        feed("\nrange=")
        feed(Timestamp.format(start))
        feed("/")
        feed(formattedEnd)
        if let segmentWindow {
            feed("\nsegmentRange=")
            feed(Timestamp.format(segmentWindow.advance(end, sign: -1, in: calendar)))
            feed("/")
            feed(formattedEnd)
        }
        return hasher.finalize().hexString(bytes: 16)
    }
}
