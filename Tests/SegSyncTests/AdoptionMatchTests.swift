import Foundation
import FullStoryContract
import SegSyncVocabulary
import Testing
@testable import SegSync

/// ``Adoption/match(_:candidates:)``: the strict rule, as a function of values.
@Suite(.timeLimit(.minutes(1))) struct AdoptionMatchTests {
    static let t0 = Date(timeIntervalSince1970: 1_796_000_000)

    static func intent(_ day: Int, sent: Double, answered: Double? = nil, timeout: Double = 60, offset: Double? = nil) -> Adoption.Intent {
        let key = PartitionKey(export: "daily", start: Date(timeIntervalSince1970: 1_795_000_000 + Double(day) * 86_400))
        let intent = CreateIntent(sentAt: t0.addingTimeInterval(sent), answeredAt: answered.map(t0.addingTimeInterval), timeout: timeout,
                                  clockOffset: offset)
        return Adoption.Intent(key: key, intent: intent, measuredOffset: nil)
    }

    static func export(_ id: String, at seconds: Double) -> ExportOperation {
        ExportOperation(id: id, type: "SEARCH_EXPORT", state: .pending, createdAt: t0.addingTimeInterval(seconds))
    }

    /// The adopted id and lag, or nil: lags are compared to a microsecond.
    static func adopted(_ outcome: Adoption.Outcome?) -> (id: String, lag: Double)? {
        if case .adopted(let operation, let lag)? = outcome { return (operation.id, lag) }
        return nil
    }

    static func isAdopted(_ outcome: Adoption.Outcome?, _ id: String, lag: Double) -> Bool {
        guard let adopted = adopted(outcome) else { return false }
        return adopted.id == id && abs(adopted.lag - lag) < 1e-6
    }

    @Test("one candidate in one window is adopted, with how long after the request it was made")
    func oneToOne() {
        let a = Self.intent(1, sent: 0, answered: 0.8)
        let result = Adoption.match([a], candidates: [Self.export("x", at: 0.4), Self.export("later", at: 30)])
        #expect(Self.isAdopted(result.outcomes[a.key], "x", lag: 0.4))
        #expect(result.unclaimed.isEmpty, "an export outside every window is nobody's business here")
    }

    @Test("no candidate: not found; the window is widened by the slack and shifted by the server's clock offset")
    func windows() {
        let a = Self.intent(1, sent: 0, answered: 0.5)
        #expect(Adoption.match([a], candidates: [Self.export("x", at: 2.1)]).outcomes[a.key] == .notFound)
        #expect(Self.isAdopted(Adoption.match([a], candidates: [Self.export("x", at: 1.9)]).outcomes[a.key], "x", lag: 1.9))
        #expect(Adoption.match([a], candidates: [Self.export("x", at: -1.4)]).outcomes[a.key] != .notFound)
        // The server's clock runs 10 s ahead: its createdAt is 10 s later than our send.
        let ahead = Self.intent(1, sent: 0, answered: 0.5, offset: 10)
        #expect(Adoption.match([ahead], candidates: [Self.export("x", at: 0.3)]).outcomes[ahead.key] == .notFound)
        #expect(Self.isAdopted(Adoption.match([ahead], candidates: [Self.export("x", at: 10.3)]).outcomes[ahead.key], "x", lag: 0.3))
        // No answer at all: the window runs to the request timeout.
        let silent = Self.intent(1, sent: 0, timeout: 5)
        #expect(Adoption.match([silent], candidates: [Self.export("x", at: 4.9)]).outcomes[silent.key] != .notFound)
        #expect(Adoption.match([silent], candidates: [Self.export("x", at: 7)]).outcomes[silent.key] == .notFound)
    }

    @Test("two candidates in a window, or one that another open intent's window holds too: nothing is adopted, all are reported")
    func ambiguous() {
        let a = Self.intent(1, sent: 0, answered: 0.5)
        let two = Adoption.match([a], candidates: [Self.export("x", at: 0.2), Self.export("y", at: 0.3)])
        #expect(two.outcomes[a.key] == .ambiguous(candidates: ["x", "y"]))
        #expect(two.unclaimed.map(\.id) == ["x", "y"])

        // Overlapping windows: b's export could be a's.
        let b = Self.intent(2, sent: 0.6, answered: 1.0)
        let overlap = Adoption.match([a, b], candidates: [Self.export("x", at: 0.2), Self.export("y", at: 0.7)])
        #expect(overlap.outcomes[a.key] == .ambiguous(candidates: ["x", "y"]))
        #expect(overlap.outcomes[b.key] == .ambiguous(candidates: ["x", "y"]))
        #expect(overlap.unclaimed.map(\.id) == ["x", "y"])

        // Far apart, each is its own.
        let c = Self.intent(3, sent: 10, answered: 10.5)
        let apart = Adoption.match([a, c], candidates: [Self.export("x", at: 0.2), Self.export("z", at: 10.1)])
        #expect(Self.isAdopted(apart.outcomes[a.key], "x", lag: 0.2))
        #expect(Self.isAdopted(apart.outcomes[c.key], "z", lag: 0.1))
        #expect(apart.unclaimed.isEmpty)

        // One export in c's window, which a's window (no answer: 60 s) also holds.
        let silent = Self.intent(1, sent: 0)
        let covered = Adoption.match([silent, c], candidates: [Self.export("z", at: 10.1)])
        #expect(covered.outcomes[c.key] == .ambiguous(candidates: ["z"]))
        #expect(covered.outcomes[silent.key] == .ambiguous(candidates: ["z"]))
    }

    @Test("a window never traps: an answer before the send (a clock stepped back), a negative timeout, a NaN offset")
    func odd() {
        let stepped = Self.intent(1, sent: 10, answered: 2)
        #expect(stepped.window == Self.t0.addingTimeInterval(8.5)...Self.t0.addingTimeInterval(11.5))
        let negative = Self.intent(1, sent: 10, timeout: -30)
        #expect(negative.window == Self.t0.addingTimeInterval(8.5)...Self.t0.addingTimeInterval(11.5))
        let nan = Self.intent(1, sent: 10, answered: 11, offset: .nan)
        #expect(nan.offset == 0 && nan.window == Self.t0.addingTimeInterval(8.5)...Self.t0.addingTimeInterval(12.5))
    }

    @Test("an export in the window of an intent not matched now (another partition's, another workspace's) is not adopted")
    func otherWindows() {
        let a = Self.intent(1, sent: 0, answered: 0.5)
        let result = Adoption.match([a], candidates: [Self.export("x", at: 0.2)],
                                    otherWindows: [Self.t0.addingTimeInterval(0.1)...Self.t0.addingTimeInterval(0.3)])
        #expect(result.outcomes[a.key] == .ambiguous(candidates: ["x"]))
        #expect(result.unclaimed.map(\.id) == ["x"])
        let apart = Adoption.match([a], candidates: [Self.export("x", at: 0.2)],
                                   otherWindows: [Self.t0.addingTimeInterval(30)...Self.t0.addingTimeInterval(40)])
        #expect(Self.isAdopted(apart.outcomes[a.key], "x", lag: 0.2))
    }

    /// A memory store whose database has other workspaces with these open intents.
    struct SharedDatabase: StateStore {
        let base = MemoryStateStore()
        let foreign: [CreateIntent]
        var name: String { base.name }
        func lock(_ holder: LockHolder, timeout: Duration, waiting: @escaping @Sendable (LockHolder?) -> Void) async throws {}
        func load() async throws -> State { try await base.load() }
        func commit(_ changes: [StateChange]) async throws { try await base.commit(changes) }
        func replace(with state: State) async throws { try await base.replace(with: state) }
        func claimed(_ operationIds: [String]) async throws -> Set<String> { try await base.claimed(operationIds) }
        func foreignIntents() async throws -> [CreateIntent] { foreign }
        func mark(_ name: String) async throws -> String? { nil }
        func setMark(_ name: String, _ value: String?) async throws {}
        func onLoss(_ handler: @escaping @Sendable (String) -> Void) {}
        func close() async {}
    }

    @Test("resolve: another workspace's open intent over the same instant keeps its export from being adopted here")
    func resolveAcrossWorkspaces() async throws {
        let a = Self.intent(1, sent: 100, answered: 100.5)
        let listing = Listing([Self.export("x", at: 100.2)])
        let alone = await Adoption.resolve([a], client: listing, store: SharedDatabase(foreign: []))
        #expect(Self.isAdopted(alone.outcomes[a.key], "x", lag: 0.2))
        let theirs = CreateIntent(sentAt: Self.t0.addingTimeInterval(99), timeout: 60)
        let shared = await Adoption.resolve([a], client: listing, store: SharedDatabase(foreign: [theirs]))
        #expect(shared.outcomes[a.key] == .ambiguous(candidates: ["x"]))
        let long = CreateIntent(sentAt: Self.t0.addingTimeInterval(-500), answeredAt: Self.t0.addingTimeInterval(-499), timeout: 60)
        let past = await Adoption.resolve([a], client: listing, store: SharedDatabase(foreign: [long]))
        #expect(Self.isAdopted(past.outcomes[a.key], "x", lag: 0.2))
        // This workspace's other open intent (not resolved now) over the same instant: the same.
        let mine = await Adoption.resolve([a], others: [Self.intent(2, sent: 99)], client: listing, store: SharedDatabase(foreign: []))
        #expect(mine.outcomes[a.key] == .ambiguous(candidates: ["x"]))
    }

    /// Another workspace's create answered while this one reads: its intent is an open
    /// window for the first read of the database, and its export's id a claim for every
    /// later read (the two change in one transaction over there).
    final class AnsweredMeanwhile: StateStore, @unchecked Sendable {
        let theirs: CreateIntent
        let id: String
        private let reads = Counter()
        init(theirs: CreateIntent, id: String) { (self.theirs, self.id) = (theirs, id) }
        private var answered: Bool { reads.value > 0 }
        var name: String { "shared" }
        func lock(_ holder: LockHolder, timeout: Duration, waiting: @escaping @Sendable (LockHolder?) -> Void) async throws {}
        func load() async throws -> State { State() }
        func commit(_ changes: [StateChange]) async throws {}
        func replace(with state: State) async throws {}
        func claimed(_ operationIds: [String]) async throws -> Set<String> {
            defer { reads.increment() }
            return answered && operationIds.contains(id) ? [id] : []
        }
        func foreignIntents() async throws -> [CreateIntent] {
            defer { reads.increment() }
            return answered ? [] : [theirs]
        }
        func mark(_ name: String) async throws -> String? { nil }
        func setMark(_ name: String, _ value: String?) async throws {}
        func onLoss(_ handler: @escaping @Sendable (String) -> Void) {}
        func close() async {}
    }

    @Test("resolve: an export another workspace's answer claims while this run reads is never adopted, whichever read sees the answer")
    func resolveWhileAnswered() async throws {
        let a = Self.intent(1, sent: 100, answered: 101)
        let theirs = CreateIntent(sentAt: Self.t0.addingTimeInterval(100), timeout: 60)
        let result = await Adoption.resolve([a], client: Listing([Self.export("x", at: 100.5)]),
                                            store: AnsweredMeanwhile(theirs: theirs, id: "x"))
        #expect(Self.adopted(result.outcomes[a.key]) == nil, "\(String(describing: result.outcomes[a.key]))")
    }

    @Test("resolve: an export another partition gave up as ambiguous is never adopted later, when the window that made it ambiguous has closed")
    func resolveAfterDisowned() async throws {
        let a = Self.intent(1, sent: 100), b = Self.intent(2, sent: 101)
        let listing = Listing([Self.export("x", at: 100.8)])
        let store = MemoryStateStore()
        let first = await Adoption.resolve([a], others: [b], client: listing, store: store)
        #expect(first.outcomes[a.key] == .ambiguous(candidates: ["x"]))
        // a exports again, giving x up (what PartitionRun records): its intent is gone.
        var record = PartitionRecord(partition: Partition(export: a.key.export, start: a.key.start, end: a.key.start, label: "a", fingerprint: "f"),
                                     parameters: Self.parameters, phase: .requested, now: Self.t0)
        record.operationId = "y"
        record.disowned = Adoption.disowned([], adding: ["x"])
        try await store.commit([StateChange(a.key.description, record)])
        let later = await Adoption.resolve([b], client: listing, store: store)
        #expect(Self.adopted(later.outcomes[b.key]) == nil, "\(String(describing: later.outcomes[b.key]))")
        #expect(later.outcomes[b.key] == .notFound)
    }

    @Test("disowned ids: each kept once, the newest last, at most 100")
    func disownedList() {
        #expect(Adoption.disowned([], adding: []) == nil)
        #expect(Adoption.disowned(["x", "y"], adding: ["y", "z"]) == ["x", "y", "z"])
        let many = Adoption.disowned((0..<99).map { "old-\($0)" }, adding: ["new-1", "new-2"])
        #expect(many?.count == 100 && many?.first == "old-1" && many?.last == "new-2")
    }

    @Test("resolve: the list is read back to the oldest window resolved now, not to an old intent that only excludes")
    func resolveReadsOnlyAsFarAsNeeded() async throws {
        let a = Self.intent(1, sent: 100, answered: 100.5)
        let stale = Self.intent(2, sent: -10_000, answered: -9_999)
        let listing = Listing((0..<20).map { Self.export("old-\($0)", at: -20_000 + Double($0) * 1000) }
                              + [Self.export("ours", at: 100.3), Self.export("new", at: 200)])
        let result = await Adoption.resolve([a], others: [stale], client: listing, store: MemoryStateStore())
        #expect(Self.isAdopted(result.outcomes[a.key], "ours", lag: 0.3))
        #expect(result.outcomes[stale.key] == nil)
        // Pages of 2, newest first: new ours | old-19 (at -1000) old-18: past the window, the last read.
        #expect(listing.pages.value == 2)
    }

    @Test("resolve: an export a page repeats (made while the list was read) is one candidate, not two")
    func resolveDeduplicates() async throws {
        let a = Self.intent(1, sent: 100, answered: 100.5)
        let listing = Listing([Self.export("ours", at: 100.3), Self.export("new", at: 200), Self.export("older", at: 50)], pageSize: 2, repeating: true)
        let result = await Adoption.resolve([a], client: listing, store: MemoryStateStore())
        #expect(Self.isAdopted(result.outcomes[a.key], "ours", lag: 0.3))
    }

    @Test("the open intents of a state, oldest first; records without an intent are not among them")
    func intentsOfState() {
        var state = State()
        let partition = Partition(export: "daily", start: Self.t0, end: Self.t0.addingTimeInterval(86_400), label: "d", fingerprint: "f")
        let spec = ExportSpec(name: "daily", segment: "everyone", type: .individuals, format: .json,
                              window: WindowSpec(every: Span(days: 1), cadence: .day, extent: .last(Span(days: 3)), settle: Span()),
                              timeZone: TimeZone(identifier: "UTC")!, fields: [])
        var open = PartitionRecord(partition: partition, parameters: ExportParameters(spec, dialect: .fullstory), phase: .creating, now: Self.t0)
        open.intent = CreateIntent(sentAt: Self.t0, timeout: 60)
        state[open.key] = open
        var requested = open
        requested.start = Self.t0.addingTimeInterval(86_400)
        requested.phase = .requested
        requested.intent = nil
        state[requested.key] = requested
        let intents = Adoption.intents(in: state, measuredOffset: 2)
        #expect(intents.map(\.key) == [open.key])
        #expect(intents.first?.offset == 2)
        #expect(intents.first?.window == Self.t0.addingTimeInterval(0.5)...Self.t0.addingTimeInterval(63.5))
    }

    /// Lists `operations` newest first, `pageSize` a page; counts the pages asked for.
    final class Listing: ExportService, @unchecked Sendable {
        let operations: [ExportOperation]
        let pageSize: Int
        let failure: FullStoryAPIError?
        let pages = Locked(0)

        /// Each page after the first also repeats the last entry of the page before, as a
        /// list read while exports are made does.
        let repeating: Bool

        init(_ operations: [ExportOperation], pageSize: Int = 2, failure: FullStoryAPIError? = nil, repeating: Bool = false) {
            self.operations = operations.sorted { $0.createdAt! > $1.createdAt! }
            self.pageSize = pageSize
            self.failure = failure
            self.repeating = repeating
        }

        func listExportOperations(pageToken: String?) async throws -> OperationPage? {
            pages.withLock { $0 += 1 }
            if let failure { throw failure }
            let from = Int(pageToken ?? "0")!
            let page = Array(operations[(repeating && from > 0 ? from - 1 : from)..<min(from + pageSize, operations.count)])
            return OperationPage(operations: page, nextPageToken: from + pageSize < operations.count ? String(from + pageSize) : nil)
        }

        func createExport(_ request: ExportRequest) async throws -> ExportOperation { throw SegSyncError("not here") }
        func getOperation(_ id: String) async throws -> ExportOperation { throw SegSyncError("not here") }
        func downloadLink(for operation: ExportOperation) async throws -> DownloadLink { throw SegSyncError("not here") }
        func download(_ url: URL, to finalPath: String, decompress: Bool, digestContent: Bool,
                      progress: @escaping @Sendable (Int64, Int64?) -> Void) async throws -> DownloadResult { throw SegSyncError("not here") }
        func download(_ url: URL, into stream: any DownloadStream, decompress: Bool, digestContent: Bool,
                      progress: @escaping @Sendable (Int64, Int64?) -> Void) async throws -> DownloadResult { throw SegSyncError("not here") }
    }

    /// Some export's parameters, for records the tests store.
    static let parameters = ExportParameters(ExportSpec(name: "other", segment: "s", type: .events, format: .csv,
                                                        window: WindowSpec(every: Span(days: 1), cadence: .day, extent: .last(Span(days: 1)), settle: Span()),
                                                        timeZone: TimeZone(identifier: "UTC")!, fields: []), dialect: .fullstory)

    @Test("resolve: an export a record claims is no candidate; the list is read back to the oldest window and no further")
    func resolve() async throws {
        let store = MemoryStateStore()
        // `claimed` is some partition's (this workspace's or another's) operation.
        var holder = PartitionRecord(partition: Partition(export: "other", start: Self.t0, end: Self.t0, label: "o", fingerprint: "f"),
                                     parameters: Self.parameters, phase: .requested, now: Self.t0)
        holder.operationId = "claimed"
        try await store.commit([StateChange(holder.key.description, holder)])
        let a = Self.intent(1, sent: 100, answered: 100.5)
        let listing = Listing([Self.export("old-1", at: 10), Self.export("old-2", at: 20), Self.export("old-3", at: 30),
                               Self.export("claimed", at: 100.2), Self.export("ours", at: 100.3),
                               Self.export("new-1", at: 200), Self.export("new-2", at: 300)])
        let result = await Adoption.resolve([a], client: listing, store: store)
        #expect(Self.isAdopted(result.outcomes[a.key], "ours", lag: 0.3))
        #expect(result.unclaimed.isEmpty)
        // Pages of 2, newest first: new-2 new-1 | ours claimed | old-3 old-2 (older than the window: the last page read).
        #expect(result.pages == 3 && listing.pages.value == 3)
    }

    @Test("resolve: no list is 'unsupported'; a list that fails is 'unavailable', and the intent stays")
    func resolveWithoutList() async throws {
        let a = Self.intent(1, sent: 0, answered: 0.5)
        let notFound = await Adoption.resolve([a], client: Listing([], failure: .unexpectedResponse(status: 404, detail: "no list")),
                                              store: MemoryStateStore())
        #expect(notFound.outcomes[a.key] == .unsupported("this API does not list operations"))
        // A key that may create exports but not list operations: exported again, not stuck run after run.
        let forbidden = await Adoption.resolve([a], client: Listing([], failure: .unauthorized(keyEnvironmentVariable: "FULLSTORY_API_KEY", message: "missing role")),
                                               store: MemoryStateStore())
        #expect(forbidden.outcomes[a.key] == .unsupported("the API key may not list operations (missing role)"))
        let down = await Adoption.resolve([a], client: Listing([], failure: .serverError(status: 503, message: nil)), store: MemoryStateStore())
        guard case .unavailable(let reason)? = down.outcomes[a.key] else { Issue.record("\(String(describing: down.outcomes[a.key]))"); return }
        #expect(reason.hasPrefix("could not list FullStory's operations to look for its export: "))
        #expect(await Adoption.resolve([], client: Listing([]), store: MemoryStateStore()) == Adoption.Result())
    }
}
