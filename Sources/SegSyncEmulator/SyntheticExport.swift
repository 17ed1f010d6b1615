import CompressNIO
import Foundation
import NIOCore

/// Writes the gzip file for an export: synthetic individuals or events with the field
/// names FullStory's exports use, in the requested format and time range.
///
/// The bytes depend on the ``ExportSpec`` and the row rate only (never on the clock), so
/// the same request always downloads the same file. People are drawn from a pool seeded
/// by the segment id, so the same individuals recur across the partitions of a segment.
/// Rendering works on pre-built byte fragments and streams through zlib into the file,
/// so a large export costs CPU, not memory.
struct SyntheticExport {
    static let maxRows: Int64 = 5_000_000

    let spec: ExportSpec
    let rows: Int64
    private let include: (String) -> Bool
    let late: Late

    /// Rows that arrive after their time: a fraction `rate` of them, each late by up to
    /// `seconds`, drawn from the row's own position so every export agrees on it.
    struct Late: Sendable {
        var rate: Double
        var seconds: Double
        /// The emulator's seed: another seed, other late rows.
        var seed: UInt64 = 0

        static let none = Late(rate: 0, seconds: 0)

        /// When row `index` (at `time`, Unix ms) arrives.
        func arrival(of index: Int64, at time: Int64, spec: ExportSpec) -> Int64 {
            guard rate > 0 else { return time }
            var random = SplitMix64(seed: UInt64(digestOf: "late|\(seed)|\(spec.segmentID)|\(spec.kind)|\(spec.start)|\(index)"))
            guard Double(random.next() % 1_000_000) / 1_000_000 < rate else { return time }
            return time + Int64(Double(random.next() % 1_000_000) / 1_000_000 * seconds * 1000)
        }
    }

    init(spec: ExportSpec, rowsPerHour: Int, late: Late = .none) {
        self.spec = spec
        self.late = late
        let span = max(0, spec.end - spec.start)
        self.rows = min(Self.maxRows, Int64(rowsPerHour) * span / 3_600_000)
        let allNames = (spec.kind == .events ? EventColumns.all : IndividualColumns.all)
        let patterns = spec.fields ?? []
        let matching =
            patterns.isEmpty ? [] : allNames.filter { name in patterns.contains { Self.glob($0, matches: name) } }
        // A selection that matches none of our names (production names like `evt_*`
        // differ) exports everything rather than nothing.
        let chosen = Set(matching.isEmpty ? allNames : matching)
        self.include = { chosen.contains($0) }
    }

    /// Writes the gzip file to `path` and returns its size in bytes.
    func write(to path: String) throws -> Int64 {
        let sink = try GzipFileWriter(path: path)
        do {
            switch spec.kind {
            case .events: try writeEvents(sink)
            case .individuals: try writeIndividuals(sink)
            }
            return try sink.finish()
        } catch {
            sink.abandon()
            throw error
        }
    }

    // MARK: - Events

    private enum EventColumns {
        static let profile = [
            "IndvId", "UserId", "UserDisplayName", "UserEmail", "UserAppKey", "PageBrowser", "PageDevice",
            "PagePlatform",
            "PageOperatingSystem", "PageScreenWidth", "PageScreenHeight", "PageIp",
        ]
        static let perRow = ["SessionId", "PageId", "EventStart", "EventSessionOffset"]
        static let template = [
            "EventType", "EventSubType", "EventCustomName", "EventTargetText", "EventTargetSelector", "PageUrl",
            "PageRefererUrl", "EventModFrustrated", "EventModDead", "EventModError",
        ]
        static let all = profile + perRow + template
    }

    private func writeEvents(_ sink: GzipFileWriter) throws {
        var random = SplitMix64(
            seed: UInt64(digestOf: "events|\(spec.segmentID)|\(spec.start)|\(spec.end)|\(spec.format)"))
        var generator = People(segmentID: spec.segmentID)
        let people = (0..<Int(min(max(rows, 1), 997))).map { _ in generator.next() }
        let profiles = people.map { render($0.fields, columns: EventColumns.profile) }
        let templates = (0..<64).map { _ in render(Self.eventTemplate(&random), columns: EventColumns.template) }
        let rowColumns = EventColumns.perRow.map(include)

        try begin(sink, columns: EventColumns.profile + EventColumns.perRow + EventColumns.template)
        let span = spec.end - spec.start
        var written: Int64 = 0
        for index in 0..<rows {
            let who = random.next(below: people.count)
            let what = random.next(below: templates.count)
            let time = spec.start + (rows > 0 ? span * index / rows : 0)
            // Drawn above either way: a row not arrived yet leaves the others as they are.
            if let asOf = spec.asOf, late.arrival(of: index, at: time, spec: spec) > asOf { continue }
            let session = people[who].id &+ (time / 1_800_000)
            let offset = time % 1_800_000
            var row = RowWriter(format: spec.format)
            row.begin(first: written == 0, sink.rows)
            written += 1
            row.append(profiles[who], sink.rows)
            row.integer("SessionId", session, included: rowColumns[0], sink.rows)
            row.integer("PageId", session &* 31 &+ Int64(what), included: rowColumns[1], sink.rows)
            row.time("EventStart", time, included: rowColumns[2], sink.rows)
            row.integer("EventSessionOffset", offset, included: rowColumns[3], sink.rows)
            row.append(templates[what], sink.rows)
            row.finish(sink.rows)
            try sink.flushIfFull()
        }
        try end(sink, rows: written)
    }

    private static func eventTemplate(_ random: inout SplitMix64) -> [(String, Value)] {
        let types = ["click", "click", "click", "navigate", "navigate", "change", "load", "custom"]
        let type = types[random.next(below: types.count)]
        let paths = [
            "/", "/products", "/products/42", "/cart", "/checkout", "/checkout/payment", "/account", "/search",
        ]
        let page = "https://shop.example.com" + paths[random.next(below: paths.count)]
        let targets = ["Add to cart", "Checkout", "Pay now", "Search", "Sign in", "Continue", "Apply coupon"]
        let target = targets[random.next(below: targets.count)]
        let frustrated = random.next(below: 10) == 0
        var fields: [(String, Value)] = [("EventType", .text(type))]
        switch type {
        case "click":
            fields += [
                ("EventTargetText", .text(target)),
                (
                    "EventTargetSelector",
                    .text("button.\(target.lowercased().replacingOccurrences(of: " ", with: "-"))")
                ),
            ]
        case "change":
            fields += [("EventSubType", .text("input")), ("EventTargetSelector", .text("input#q"))]
        case "custom":
            fields += [
                ("EventCustomName", .text(["Order Completed", "Coupon Applied", "Signup"][random.next(below: 3)]))
            ]
        default:
            fields += [("EventSubType", .text(type == "load" ? "page" : "link"))]
        }
        fields += [
            ("PageUrl", .text(page)),
            ("PageRefererUrl", .text(random.next(below: 3) == 0 ? "https://www.example.org/" : "")),
            ("EventModFrustrated", .integer(frustrated ? 1 : 0)),
            ("EventModDead", .integer(random.next(below: 20) == 0 ? 1 : 0)),
            ("EventModError", .integer(random.next(below: 25) == 0 ? 1 : 0)),
        ]
        return fields
    }

    // MARK: - Individuals

    private enum IndividualColumns {
        static let all = [
            "IndvId", "UserId", "UserDisplayName", "UserEmail", "UserAppKey", "UserCreated", "PageBrowser",
            "PageDevice",
            "PagePlatform", "PageOperatingSystem", "PageScreenWidth", "PageScreenHeight", "PageIp", "SessionStart",
        ]
    }

    private func writeIndividuals(_ sink: GzipFileWriter) throws {
        try begin(sink, columns: IndividualColumns.all)
        var people = People(segmentID: spec.segmentID)
        let span = spec.end - spec.start
        var written: Int64 = 0
        for index in 0..<rows {
            let person = people.next()
            let time = spec.start + span * index / rows
            if let asOf = spec.asOf, late.arrival(of: index, at: time, spec: spec) > asOf { continue }
            var fields = person.fields
            fields.insert(("UserCreated", .time(person.created)), at: 5)
            fields.append(("SessionStart", .time(time)))
            var row = RowWriter(format: spec.format)
            row.begin(first: written == 0, sink.rows)
            written += 1
            row.append(render(fields, columns: IndividualColumns.all), sink.rows)
            row.finish(sink.rows)
            try sink.flushIfFull()
        }
        try end(sink, rows: written)
    }

    struct Person {
        var id: Int64
        var created: Int64
        var fields: [(String, Value)]
    }

    /// The same segment always yields the same people, in the same order, one at a time
    /// (an individuals export can have millions).
    struct People {
        private var random: SplitMix64
        private var number = 0
        private static let first = [
            "Ana", "Ben", "Chloe", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jun", "Kira", "Leo",
        ]
        private static let last = [
            "Silva", "Okafor", "Martin", "Patel", "Kim", "Novak", "Berg", "Rossi", "Sato", "Haddad",
        ]
        private static let devices: [(String, String, String, String, Int64, Int64)] = [
            ("Chrome", "Desktop", "Web", "Windows", 1920, 1080), ("Safari", "Mobile", "Web", "iOS", 390, 844),
            ("Firefox", "Desktop", "Web", "Linux", 1440, 900), ("Chrome", "Mobile", "Web", "Android", 412, 915),
            ("Safari", "Desktop", "Web", "macOS", 1512, 982), ("Edge", "Desktop", "Web", "Windows", 1366, 768),
        ]

        init(segmentID: String) {
            random = SplitMix64(seed: UInt64(digestOf: "people|\(segmentID)"))
        }

        mutating func next() -> Person {
            defer { number += 1 }
            let id = 5_000_000_000_000_000 + Int64(random.next() % 4_000_000_000_000_000)
            let given = Self.first[random.next(below: Self.first.count)]
            let family = Self.last[random.next(below: Self.last.count)]
            let device = Self.devices[random.next(below: Self.devices.count)]
            let created = 1_672_531_200_000 + Int64(random.next() % 94_608_000_000)  // 2023–2025
            let ip = "203.0.113.\(random.next(below: 254) + 1)"
            return Person(
                id: id,
                created: created,
                fields: [
                    ("IndvId", .integer(id)),
                    ("UserId", .text(String(format: "user-%08x", UInt32(truncatingIfNeeded: random.next())))),
                    ("UserDisplayName", .text("\(given) \(family)")),
                    ("UserEmail", .text("\(given.lowercased()).\(family.lowercased())\(number)@example.com")),
                    ("UserAppKey", .text(String(format: "app-%06d", number))),
                    ("PageBrowser", .text(device.0)),
                    ("PageDevice", .text(device.1)),
                    ("PagePlatform", .text(device.2)),
                    ("PageOperatingSystem", .text(device.3)),
                    ("PageScreenWidth", .integer(device.4)),
                    ("PageScreenHeight", .integer(device.5)),
                    ("PageIp", .text(ip)),
                ]
            )
        }
    }

    // MARK: - Rendering

    enum Value {
        case text(String)
        case integer(Int64)
        case time(Int64)
    }

    /// A run of fields pre-rendered for the chosen format: for JSON `"A":1,"B":"x"`
    /// (empty values omitted, as production does), for CSV `1,x` (every column present).
    /// `nil` when the fragment adds nothing (no included column, or for JSON no value).
    private func render(_ fields: [(String, Value)], columns: [String]) -> [UInt8]? {
        let values = Dictionary(fields, uniquingKeysWith: { first, _ in first })
        var parts: [String] = []
        for name in columns where include(name) {
            let value = values[name]
            switch spec.format {
            case .json, .ndjson:
                switch value {
                case .text(let text)? where !text.isEmpty: parts.append("\"\(name)\":\(Self.jsonString(text))")
                case .integer(let number)?: parts.append("\"\(name)\":\(number)")
                case .time(let ms)?: parts.append("\"\(name)\":\"\(WireTime.format(milliseconds: ms))\"")
                default: continue
                }
            case .csv:
                switch value {
                case .text(let text)?: parts.append(Self.csvField(text))
                case .integer(let number)?: parts.append(String(number))
                case .time(let ms)?: parts.append(WireTime.format(milliseconds: ms))
                case nil: parts.append("")
                }
            }
        }
        return parts.isEmpty ? nil : Array(parts.joined(separator: ",").utf8)
    }

    private func begin(_ sink: GzipFileWriter, columns: [String]) throws {
        switch spec.format {
        case .json: sink.rows.append(Array("[".utf8))
        case .ndjson: break
        case .csv:
            sink.rows.append(Array((columns.filter(include).map(Self.csvField).joined(separator: ",") + "\n").utf8))
        }
    }

    private func end(_ sink: GzipFileWriter, rows: Int64) throws {
        switch spec.format {
        case .json: sink.rows.append(Array((rows > 0 ? "\n]\n" : "]\n").utf8))
        case .ndjson, .csv: break
        }
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `*` matches any run of characters; case-insensitive.
    static func glob(_ pattern: String, matches name: String) -> Bool {
        let p = Array(pattern.lowercased())
        let n = Array(name.lowercased())
        func match(_ i: Int, _ j: Int) -> Bool {
            if i == p.count { return j == n.count }
            if p[i] == "*" { return (j...n.count).contains { match(i + 1, $0) } }
            return j < n.count && p[i] == n[j] && match(i + 1, j + 1)
        }
        return match(0, 0)
    }
}

/// Appends one row to the output in the export's format.
private struct RowWriter {
    let format: ExportSpec.Format
    private var needsComma = false

    init(format: ExportSpec.Format) {
        self.format = format
    }

    func begin(first: Bool, _ out: RowBuffer) {
        switch format {
        case .json: out.append(first ? "\n{" : ",\n{")
        case .ndjson: out.append("{")
        case .csv: break
        }
    }

    mutating func append(_ fragment: [UInt8]?, _ out: RowBuffer) {
        guard let fragment else { return }
        separator(out)
        out.append(fragment)
    }

    mutating func integer(_ name: StaticString, _ value: Int64, included: Bool, _ out: RowBuffer) {
        guard included else { return }
        separator(out)
        key(name, out)
        out.appendDecimal(value)
    }

    mutating func time(_ name: StaticString, _ milliseconds: Int64, included: Bool, _ out: RowBuffer) {
        guard included else { return }
        separator(out)
        key(name, out)
        if format != .csv { out.append("\"") }
        out.appendTimestamp(milliseconds: milliseconds)
        if format != .csv { out.append("\"") }
    }

    func finish(_ out: RowBuffer) {
        switch format {
        case .json: out.append("}")
        case .ndjson: out.append("}\n")
        case .csv: out.append("\n")
        }
    }

    private mutating func separator(_ out: RowBuffer) {
        if needsComma { out.append(",") }
        needsComma = true
    }

    private func key(_ name: StaticString, _ out: RowBuffer) {
        guard format != .csv else { return }
        out.append("\"")
        out.append(name)
        out.append("\":")
    }
}

/// The rows being rendered, in plain memory.
///
/// Rows are built with raw copies rather than `ByteBuffer` calls: exports can have
/// millions of rows, and in a debug build (which is what tests run) each generic
/// `ByteBuffer` write costs far more than a `memcpy`.
final class RowBuffer {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        base.deallocate()
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    func reset() {
        count = 0
    }

    func append(_ bytes: UnsafeRawBufferPointer) {
        reserve(bytes.count)
        if let source = bytes.baseAddress {
            (base + count).copyMemory(from: source, byteCount: bytes.count)
        }
        count += bytes.count
    }

    func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    func append(_ text: StaticString) {
        text.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    func appendDecimal(_ value: Int64) {
        reserve(21)
        if value < 0 {
            (base + count).storeBytes(of: UInt8(ascii: "-"), as: UInt8.self)
            count += 1
        }
        let magnitude = value.magnitude
        var width = 1
        var probe = magnitude / 10
        while probe > 0 {
            width += 1
            probe /= 10
        }
        put(magnitude, width: width)
    }

    /// `2026-01-01T00:00:00.000Z`, without Foundation (one per event row).
    func appendTimestamp(milliseconds: Int64) {
        let days = milliseconds >= 0 ? milliseconds / 86_400_000 : (milliseconds - 86_399_999) / 86_400_000
        var rest = milliseconds - days * 86_400_000
        // Civil-from-days (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let hour = rest / 3_600_000
        rest %= 3_600_000
        let minute = rest / 60_000
        rest %= 60_000
        reserve(24)
        put(UInt64(max(0, year)), width: 4, then: "-")
        put(UInt64(month), width: 2, then: "-")
        put(UInt64(day), width: 2, then: "T")
        put(UInt64(hour), width: 2, then: ":")
        put(UInt64(minute), width: 2, then: ":")
        put(UInt64(rest / 1000), width: 2, then: ".")
        put(UInt64(rest % 1000), width: 3, then: "Z")
    }

    /// Writes `value` as exactly `width` digits (zero-padded), then `suffix` if given.
    private func put(_ value: UInt64, width: Int, then suffix: Unicode.Scalar? = nil) {
        var remaining = value
        var position = width - 1
        while position >= 0 {
            (base + count + position).storeBytes(of: UInt8(ascii: "0") + UInt8(remaining % 10), as: UInt8.self)
            remaining /= 10
            position -= 1
        }
        count += width
        if let suffix {
            (base + count).storeBytes(of: UInt8(ascii: suffix), as: UInt8.self)
            count += 1
        }
    }

    private func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        let newCapacity = max(capacity * 2, count + extra)
        let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        grown.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }
}

/// Compresses the rows put in ``rows`` into a gzip file, a window at a time.
final class GzipFileWriter {
    let rows = RowBuffer(capacity: 512 * 1024)
    private let path: String
    private let handle: FileHandle
    private let compressor: ZlibCompressor
    private var output: ByteBuffer
    private var size: Int64 = 0
    private static let flushThreshold = 256 * 1024

    init(path: String) throws {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        // Fastest level: an emulator should spend its time serving, and the output is
        // still deterministic for a given input and level.
        compressor = try ZlibCompressor(
            algorithm: .gzip, configuration: ZlibConfiguration(compressionLevel: .fastestCompression))
        output = ByteBufferAllocator().buffer(capacity: 256 * 1024)
    }

    func flushIfFull() throws {
        if rows.count >= Self.flushThreshold { try compress(finishing: false) }
    }

    func finish() throws -> Int64 {
        try compress(finishing: true)
        try handle.synchronize()
        try handle.close()
        return size
    }

    func abandon() {
        try? handle.close()
        try? FileManager.default.removeItem(atPath: path)
    }

    private func compress(finishing: Bool) throws {
        var input = ByteBuffer(bytes: rows.bytes)
        rows.reset()
        while true {
            output.clear()
            var more = false
            do {
                try compressor.deflate(from: &input, to: &output, flush: finishing ? .finish : .no)
                // With .no, zlib stops when the output window is full, input left or not.
                more = !finishing && input.readableBytes > 0
            } catch let error as CompressNIOError where error == .bufferOverflow {
                more = true
            }
            if output.readableBytes > 0 {
                try handle.write(contentsOf: output.readableBytesView)
                size += Int64(output.readableBytes)
            }
            if !more { break }
        }
    }
}
