import Foundation
import SegSyncVocabulary

/// Numbers in state can come from outside segsync's hands: a row edited by hand, a store
/// another build wrote, a document given to `segsync state push`. Plans and listings turn
/// them into integers (a percentage, an instant's milliseconds), which traps on a value
/// out of range, so they are checked where they enter: what a store reads is clamped when
/// the value only informs (progress, attempts, when a record was written) and refused when
/// it is the partition's identity (its start and end); a pushed document is refused
/// whole, naming the partition, because its author can fix it.
extension PartitionRecord {
    /// The instants segsync writes and reads: RFC 3339's years 0000–9999, in seconds since 1970.
    public static let instantRange: ClosedRange<Double> = -62_167_219_200 ... 253_402_300_799.999

    /// The most attempts a record may count (PostgreSQL keeps them in an `integer`).
    public static let attemptRange: ClosedRange<Int> = 0...Int(Int32.max)

    /// What is out of range in this record, one phrase each ("progress 1e+300 is not
    /// between 0 and 100"); empty when nothing is.
    public var problems: [String] {
        var problems: [String] = []
        func instant(_ name: String, _ date: Date) {
            let value = date.timeIntervalSince1970
            if !Self.instantRange.contains(value) { problems.append("\(name) \(value) is not an instant between the years 0000 and 9999") }
        }
        instant("start", start)
        instant("end", end)
        instant("createdAt", createdAt)
        instant("updatedAt", updatedAt)
        if let progress, !(0...100).contains(progress) { problems.append("progress \(progress) is not between 0 and 100") }
        if !Self.attemptRange.contains(attempts) { problems.append("attempts \(attempts) is not between 0 and \(Self.attemptRange.upperBound)") }
        if let output {
            if output.bytes < 0 { problems.append("output.bytes \(output.bytes) is negative") }
            if let modified = output.modified, !modified.isFinite { problems.append("output.modified \(modified) is not a number") }
        }
        return problems
    }

    /// This record as read from a store, with what only informs clamped into range:
    /// progress to 0…100 (dropped when not a number), attempts to ``attemptRange``, the
    /// times it was written to ``instantRange``, a modification time that is not a number
    /// dropped (the file is then hashed). Throws, naming the partition, when its start or
    /// end is no instant: those are what the partition is.
    public func clamped(in store: String) throws -> PartitionRecord {
        for (name, date) in [("start_at", start), ("end_at", end)] where !Self.instantRange.contains(date.timeIntervalSince1970) {
            throw SegSyncError("partition \(key.export)@\(label) has \(name) \(date.timeIntervalSince1970) in \(store), which is not an instant between the years 0000 and 9999; the row is damaged: delete it, or replace the state with a good copy (segsync state push --force).")
        }
        var record = self
        func clamp(_ date: Date) -> Date {
            let value = date.timeIntervalSince1970
            return value.isNaN ? start : Date(timeIntervalSince1970: min(max(value, Self.instantRange.lowerBound), Self.instantRange.upperBound))
        }
        record.createdAt = clamp(createdAt)
        record.updatedAt = clamp(updatedAt)
        record.progress = progress.flatMap { $0.isNaN ? nil : min(max($0, 0), 100) }
        record.attempts = min(max(attempts, Self.attemptRange.lowerBound), Self.attemptRange.upperBound)
        if let modified = output?.modified, !modified.isFinite { record.output?.modified = nil }
        return record
    }
}

extension State {
    /// The most a serial may be: past it, a commit's `serial + 1` would overflow.
    public static let serialRange: ClosedRange<Int> = 0...(1 << 53)

    /// Refuses a document (`segsync state push`) with a number out of range, naming the
    /// partition and the field, so its author can fix it before it replaces the state.
    public func check(source: String) throws {
        if !Self.serialRange.contains(serial) {
            throw SegSyncError("\(source) has serial \(serial), which is not between 0 and \(Self.serialRange.upperBound); fix it and push again.")
        }
        for (key, record) in partitions.sorted(by: { $0.key < $1.key }) {
            let problems = record.problems
            guard !problems.isEmpty else { continue }
            throw SegSyncError("\(source) has partition \(key) with \(problems.joined(separator: ", ")); fix or remove it and push again.")
        }
    }
}
