import Foundation

/// Every export this emulator made, in the order it made them: what the production
/// dialect's `GET /operations/v1` lists (newest first). Operation ids stay self-contained
/// tickets that any emulator with the same key and seed can answer for; only the list
/// needs memory, and it is this process's.
actor OperationRegistry {
    struct Entry: Sendable {
        var id: String
        var ticket: OperationTicket
    }

    private var entries: [Entry] = []

    func register(_ id: String, _ ticket: OperationTicket) {
        entries.append(Entry(id: id, ticket: ticket))
    }

    var count: Int { entries.count }

    /// Up to `limit` entries older than the cursor `before` (an index; nil: the newest),
    /// newest first, that `keep` accepts; and the cursor of the next page, if any is left.
    func page(before: Int?, limit: Int, keep: (Entry) -> Bool) -> (entries: [Entry], next: Int?) {
        var index = min(before ?? entries.count, entries.count) - 1
        var page: [Entry] = []
        while index >= 0, page.count < limit {
            if keep(entries[index]) { page.append(entries[index]) }
            index -= 1
        }
        // A next page only when something older is left to look at.
        return (page, index >= 0 ? index + 1 : nil)
    }
}
