import Foundation
import FullStoryAPI
import FullStoryContract
import SegSyncEmulator
import SegSyncVocabulary
import Testing

@Suite("Faults and retries against the emulator", .timeLimit(.minutes(5)))
struct FaultTests {
    @Test("429 waits exactly Retry-After, then succeeds, and slows the rate limiter", arguments: Dialect.allCases)
    func tooManyRequests(dialect: Dialect) async throws {
        try await withHarness(
            dialect,
            emulator: {
                $0.rate429 = 1
                $0.maxFaults = 2
                $0.retryAfterSeconds = 1
            }
        ) { h in
            let segment = try await h.client.getSegment("everyone")
            #expect(segment.id == "everyone")
            #expect(await h.retryWaits.waits == [.seconds(1), .seconds(1)])
            #expect(try h.requests("getSegment").map(\.status) == [429, 429, 200])
            // Two 429s: half, then a quarter of the configured 1000/s.
            #expect(await h.client.rateLimiter.currentRate == 250)
        }
    }

    @Test("429 on every call gives up after the attempt limit with rateLimited")
    func tooManyRequestsForever() async throws {
        try await withHarness(emulator: {
            $0.rate429 = 1
            $0.retryAfterSeconds = 2
        }) { h in
            let error = await #expect(throws: FullStoryAPIError.self) { try await h.client.listSegmentsPage() }
            #expect(error == .rateLimited(retryAfter: .seconds(2)))
            #expect(error?.isTransient == true)
            let calls = try h.requests("listSegments")
            #expect(calls.count == 6)
            #expect(await h.retryWaits.waits.count == 5)
        }
    }

    @Test("5xx on a read is retried with jittered exponential backoff", arguments: Dialect.allCases)
    func serverErrorsOnReads(dialect: Dialect) async throws {
        try await withHarness(
            dialect,
            emulator: {
                $0.rate5xx = 1
                $0.maxFaults = 3
            }
        ) { h in
            let page = try await h.client.listSegmentsPage(limit: 5)
            #expect(page.segments.count == 5)
            // Full jitter with the random source pinned at 0.5: half of 0.5 s, 1 s, 2 s.
            #expect(await h.retryWaits.waits == [.milliseconds(250), .milliseconds(500), .seconds(1)])
            #expect(try h.requests("listSegments").map(\.status) == [500, 500, 500, 200])
        }
    }

    @Test("5xx on every read ends in serverError with the server's message")
    func serverErrorsForever() async throws {
        try await withHarness(emulator: { $0.rate5xx = 1 }) { h in
            let error = await #expect(throws: FullStoryAPIError.self) { try await h.client.getOperation("anything") }
            guard case .serverError(let status, let message)? = error else {
                Issue.record("expected serverError, got \(String(describing: error))")
                return
            }
            #expect(status == 500)
            #expect(message?.contains("on purpose") == true)
            #expect(error?.isTransient == true)
        }
    }

    @Test("a reset on a read is retried", arguments: Dialect.allCases)
    func resetOnRead(dialect: Dialect) async throws {
        try await withHarness(
            dialect,
            emulator: {
                $0.rateReset = 1
                $0.maxFaults = 1
            }
        ) { h in
            let segments = try await h.client.listSegmentsPage(limit: 3)
            #expect(segments.segments.count == 3)
            #expect(try h.requests("listSegments").map(\.fault) == ["reset", nil])
            #expect(await h.retryWaits.waits.count == 1)
        }
    }

    /// The faults that lose a create's answer after the server made the export, and a word
    /// the cause must name.
    enum LostAnswer: String, CaseIterable, Sendable {
        case serverError = "500", reset, unreadable

        func inject(_ configuration: inout EmulatorConfiguration) {
            configuration.maxFaults = 1
            switch self {
            case .serverError: configuration.rate5xx = 1
            case .reset: configuration.rateReset = 1
            case .unreadable: configuration.rateUnreadableCreate = 1
            }
        }

        var logged: String? { self == .serverError ? "5xx" : rawValue }
        var causes: [String] {
            switch self {
            case .serverError: ["500"]
            case .reset: ["closed", "reset", "ended"]
            case .unreadable: ["HTTP 200", "cannot read"]
            }
        }
    }

    @Test("a create whose answer is lost (a 500, a reset after sending, a 2xx no one can read) is sent once: its outcome is unknown",
          arguments: LostAnswer.allCases, Dialect.allCases)
    func createAnswerLost(fault: LostAnswer, dialect: Dialect) async throws {
        try await withHarness(dialect, emulator: { fault.inject(&$0) }) { h in
            let error = await #expect(throws: FullStoryAPIError.self) {
                try await h.client.createExport(sampleRequest())
            }
            guard case .createOutcomeUnknown(let cause, let answered)? = error else {
                Issue.record("expected createOutcomeUnknown, got \(String(describing: error))")
                return
            }
            #expect(fault.causes.contains { cause.contains($0) }, "\(cause)")
            // Only an unreadable 200 bounds when the export was made: a 5xx can come from
            // a gateway before the service behind it acts, and a reset brings no answer.
            #expect(answered == (fault == .unreadable), "\(cause)")
            #expect(error?.isTransient == false)
            #expect(error?.description.contains("second export") == true)
            let creates = try h.requests("createExport")
            #expect(creates.count == 1)
            #expect(creates.first?.fault == fault.logged)
            #expect(await h.retryWaits.waits.isEmpty)
        }
    }

    @Test("a create answered 429 is retried: nothing was created", arguments: Dialect.allCases)
    func createAfterTooManyRequests(dialect: Dialect) async throws {
        try await withHarness(
            dialect,
            emulator: {
                $0.rate429 = 1
                $0.maxFaults = 1
                $0.retryAfterSeconds = 0
            }
        ) { h in
            let operation = try await h.client.createExport(sampleRequest())
            #expect(!operation.id.isEmpty)
            #expect(try h.requests("createExport").map(\.status) == [429, 200])
            #expect(await h.retryWaits.waits == [.zero])
        }
    }

    @Test("beforeSending runs right before each attempt leaves, after the retry's wait; a cancelled create sends nothing and calls it never")
    func beforeSendingEachAttempt() async throws {
        try await withHarness(
            .fullstory,
            emulator: {
                $0.rate429 = 1
                $0.maxFaults = 1
                $0.retryAfterSeconds = 0
            }
        ) { h in
            final class Calls: @unchecked Sendable {
                private let lock = NSLock()
                private var values: [Int] = []
                func withLock<T>(_ body: (inout [Int]) -> T) -> T { lock.withLock { body(&values) } }
            }
            let calls = Calls()
            _ = try await h.client.createExport(sampleRequest(), beforeSending: {
                let waited = await h.retryWaits.waits.count
                calls.withLock { $0.append(waited) }
            })
            // Once before the 429, once after its wait: each time before the request went out.
            #expect(calls.withLock { $0 } == [0, 1])
            #expect(try h.requests("createExport").map(\.status) == [429, 200])

            let cancelled = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await h.client.createExport(sampleRequest(), beforeSending: { calls.withLock { $0.append(-1) } })
            }
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            #expect(calls.withLock { $0 } == [0, 1], "a create cancelled before it is sent commits no intent")
            #expect(try h.requests("createExport").count == 2)
        }
    }

    @Test("a hook that throws (an intent not recorded) sends nothing, and its error comes back as it was, never as a lost answer")
    func beforeSendingFails() async throws {
        struct NotRecorded: Error {}
        try await withHarness(.fullstory) { h in
            await #expect(throws: NotRecorded.self) {
                _ = try await h.client.createExport(sampleRequest(), beforeSending: { throw NotRecorded() })
            }
            let sent = try h.requests("createExport")
            #expect(sent.isEmpty, "no create was sent")
        }
    }

    @Test("a create answered 503 with Retry-After is retried")
    func createAfterServiceUnavailable() async throws {
        try await withHarness(emulator: {
            $0.rate5xx = 1
            $0.serverErrorStatus = 503
            $0.maxFaults = 1
            $0.retryAfterSeconds = 1
        }) { h in
            _ = try await h.client.createExport(sampleRequest())
            #expect(try h.requests("createExport").map(\.status) == [503, 200])
            #expect(await h.retryWaits.waits == [.seconds(1)])
        }
    }

    @Test("a create that could not connect is retried, and sent only once")
    func createAfterConnectionRefused() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "segsync-refused-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let logPath = folder.appendingPathComponent("requests.jsonl").path

        // Find a free port, then leave it closed: the first attempt is refused.
        let port = try await withEmulator(EmulatorConfiguration(logger: quietLogger())) { $0.port }
        let late = LateEmulator(
            EmulatorConfiguration(port: port, operationSeconds: 0, requestLogPath: logPath, logger: quietLogger()))
        let policy = RetryPolicy(random: { 0 }, sleep: { _ in try await late.start() })
        let configuration = FullStoryClient.Configuration(
            endpoint: URL(string: "http://127.0.0.1:\(port)")!, apiKey: APIKey("emulator-key"), retryPolicy: policy,
            connectTimeout: .seconds(2), logger: quietLogger()
        )
        do {
            let operation = try await FullStoryClient.withClient(configuration) {
                try await $0.createExport(sampleRequest())
            }
            #expect(operation.state == .completed)
            let log = try String(contentsOfFile: logPath, encoding: .utf8)
            #expect(log.split(separator: "\n").filter { $0.contains("\"createExport\"") }.count == 1)
        } catch {
            await late.stop()
            throw error
        }
        await late.stop()
    }

    @Test("reads against a closed port fail with a transport error after every attempt")
    func connectionRefusedForever() async throws {
        let port = try await withEmulator(EmulatorConfiguration(logger: quietLogger())) { $0.port }
        let waits = WaitRecorder()
        let configuration = FullStoryClient.Configuration(
            endpoint: URL(string: "http://127.0.0.1:\(port)")!, apiKey: APIKey("k"),
            retryPolicy: instantRetryPolicy(waits, maxAttempts: 3), connectTimeout: .seconds(2), logger: quietLogger()
        )
        try await FullStoryClient.withClient(configuration) { client in
            let error = await #expect(throws: FullStoryAPIError.self) { try await client.getSegment("everyone") }
            guard case .transport(let cause)? = error else {
                Issue.record("expected transport, got \(String(describing: error))")
                return
            }
            #expect(cause.contains("refused"))
            #expect(error?.isTransient == true)
            #expect(error?.description.hasPrefix("Could not talk to the FullStory API") == true)
        }
        #expect(await waits.waits.count == 2)
    }
}

/// An emulator started on demand from inside a retry wait.
actor LateEmulator {
    private let configuration: EmulatorConfiguration
    private var emulator: Emulator?

    init(_ configuration: EmulatorConfiguration) {
        self.configuration = configuration
    }

    func start() async throws {
        if emulator == nil { emulator = try await Emulator.start(configuration) }
    }

    func stop() async {
        await emulator?.stop()
        emulator = nil
    }
}
