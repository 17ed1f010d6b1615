import Foundation

/// The emulator's segments: fixed, so every run and every process sees the same list.
///
/// Built-in segments (like `everyone`) have no creator and no creation time, as in
/// production; a few named ones match the examples in the docs; the rest are generated
/// so that listing really has pages to turn.
struct SegmentCatalog: Sendable {
    struct Entry: Sendable, Hashable {
        var id: String
        var name: String
        var creator: String?
        /// Unix milliseconds.
        var created: Int64?
    }

    let entries: [Entry]
    private let index: [String: Int]

    init(generated count: Int) {
        var entries = [
            Entry(id: "everyone", name: "Everyone"),
            Entry(
                id: "checkout_abandoners", name: "Checkout abandoners", creator: "ana@example.com",
                created: 1_735_732_800_000),
            Entry(
                id: "frustrated_mobile", name: "Frustrated mobile users", creator: "ben@example.com",
                created: 1_738_411_200_000),
            Entry(id: "power_users", name: "Power users", creator: "ana@example.com", created: 1_740_830_400_000),
        ]
        let base: Int64 = 1_704_067_200_000  // 2024-01-01
        for number in 0..<count {
            let id = String(format: "seg_%04d", number + 1)
            entries.append(
                Entry(
                    id: id,
                    name: "Generated segment \(number + 1)",
                    creator: "analyst\(number % 7 + 1)@example.com",
                    created: base + Int64(number) * 3_600_000 * 7
                )
            )
        }
        self.entries = entries
        self.index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.id, $0) })
    }

    func segment(_ id: String) -> Entry? {
        index[id].map { entries[$0] }
    }

    /// The page starting at `offset`, and the offset of the next page if any.
    func page(offset: Int, limit: Int) -> (entries: ArraySlice<Entry>, next: Int?) {
        guard offset < entries.count else { return ([], nil) }
        let end = min(entries.count, offset + limit)
        return (entries[offset..<end], end < entries.count ? end : nil)
    }

    /// Opaque page tokens; an unreadable one is answered with an empty last page.
    static func token(offset: Int) -> String {
        Base64URL.encode(Data("offset:\(offset)".utf8))
    }

    static func offset(token: String) -> Int? {
        guard let data = Base64URL.decode(token), let text = String(data: data, encoding: .utf8),
            text.hasPrefix("offset:"), let offset = Int(text.dropFirst(7)), offset >= 0
        else { return nil }
        return offset
    }
}
