import Foundation
import FullStoryAPI
import FullStoryContract
import SegSyncEmulator
import SegSyncVocabulary
import Testing

@Suite("Exports and operations", .timeLimit(.minutes(5)))
struct ExportTests {
    @Test("an export moves from PENDING to COMPLETED with rising progress", arguments: Dialect.allCases)
    func lifecycle(dialect: Dialect) async throws {
        // The emulator's clock moves only when the test moves it: a second per poll, so
        // polls land in every phase of a six-second export however busy the machine is.
        let clock = HandClock()
        try await withHarness(dialect, emulator: { $0.operationSeconds = 6; $0.now = clock.now }) { h in
            let created = try await h.client.createExport(sampleRequest())
            #expect(created.state == .pending)
            var states: [OperationState] = [created.state]
            var progress: [Double] = []
            var operation = created
            for _ in 0..<10 where operation.state.isInProgress {
                clock.advance(by: 1)
                operation = try await h.client.getOperation(created.id)
                states.append(operation.state)
                if let percent = operation.estimatePctComplete { progress.append(percent) }
            }
            #expect(operation.state == .completed)
            #expect(operation.finishedAt != nil)
            #expect(progress == progress.sorted(), "progress must not go backwards: \(progress)")
            #expect(progress.last == 100)
            #expect(progress.contains { $0 > 0 && $0 < 100 })
            // Production documents no RUNNING state; the contract has one.
            #expect(states.contains(.running) == (dialect == .seed))

            let link = try await h.client.downloadLink(for: operation)
            #expect(link.url.host == "127.0.0.1")
            #expect(link.url.path.hasPrefix("/downloads/"))
            switch dialect {
            case .seed:
                #expect(operation.results?.downloadURL != nil)
                #expect(try h.requests("exportResults").isEmpty)
            case .fullstory:
                #expect(operation.results?.searchExportID != nil)
                #expect(operation.results?.downloadURL == nil)
                #expect(try h.requests("exportResults").count == 1)
                let expires = try #require(link.expires)
                #expect(abs(expires.timeIntervalSinceNow - 300) < 30)
            }
        }
    }

    @Test("with no duration an export completes at once", arguments: Dialect.allCases)
    func immediate(dialect: Dialect) async throws {
        try await withHarness(dialect) { h in
            let operation = try await runToCompletion(h.client, sampleRequest(.individuals, format: .csv))
            #expect(operation.state == .completed)
            #expect(operation.estimatePctComplete == 100)
        }
    }

    @Test("the server's 400 message is passed through", arguments: Dialect.allCases)
    func badRequestMessage(dialect: Dialect) async throws {
        try await withHarness(dialect) { h in
            let request = ExportRequest(
                segmentID: "everyone", type: .events, format: .json,
                timezone: dialect == .fullstory ? "Mars/Olympus_Mons" : nil, fields: nil
            )
            if dialect == .fullstory {
                let error = await #expect(throws: FullStoryAPIError.self) { try await h.client.createExport(request) }
                guard case .badRequest(let message)? = error else {
                    Issue.record("expected badRequest, got \(String(describing: error))")
                    return
                }
                #expect(message.contains("timezone must be an IANA time zone"))
                #expect(error?.description.contains("timezone must be an IANA time zone") == true)
            }
            // An unknown segment: 404 in production; the contract has no 404 here, so 400.
            let unknown = ExportRequest(segmentID: "ghost", type: .events, format: .csv)
            let error = await #expect(throws: FullStoryAPIError.self) { try await h.client.createExport(unknown) }
            switch dialect {
            case .seed:
                guard case .badRequest(let message)? = error else {
                    Issue.record("expected badRequest, got \(String(describing: error))")
                    return
                }
                #expect(message.contains("Segment 'ghost' was not found"))
            case .fullstory:
                #expect(error == .segmentNotFound(segmentID: "ghost"))
            }
            #expect(error?.isTransient == false)
        }
    }

    @Test("a poll answered 200 with a proxy's HTML page is an unreadable answer, not a state")
    func htmlPoll() async throws {
        try await withHarness(.seed, emulator: { $0.htmlPolls = 1 }) { h in
            let operation = try await h.client.createExport(sampleRequest())
            let error = await #expect(throws: FullStoryAPIError.self) { try await h.client.getOperation(operation.id) }
            guard case .unexpectedResponse(200, _)? = error else {
                Issue.record("expected unexpectedResponse, got \(String(describing: error))")
                return
            }
            // The next poll reads the operation again.
            #expect(try await h.client.getOperation(operation.id).id == operation.id)
        }
    }

    @Test("a key rejected mid-run is unauthorized, naming the variable; once fixed, calls succeed again")
    func rotatedKey() async throws {
        try await withHarness(.seed, emulator: { $0.rejectKeyFrom = 2; $0.rejectKeyCount = 1 }) { h in
            let operation = try await h.client.createExport(sampleRequest())
            let error = await #expect(throws: FullStoryAPIError.self) { try await h.client.getOperation(operation.id) }
            guard case .unauthorized? = error else {
                Issue.record("expected unauthorized, got \(String(describing: error))")
                return
            }
            #expect(try await h.client.getOperation(operation.id).id == operation.id)
        }
    }

    @Test("requests that cannot be right are refused before sending")
    func refusedLocally() async throws {
        try await withHarness(.seed) { h in
            let start = Date(timeIntervalSince1970: 1_767_225_600)
            let backwards = ExportRequest(
                segmentID: "everyone", type: .events, timeRange: TimeRange(start: start, end: start)
            )
            let withFields = ExportRequest(segmentID: "everyone", type: .events, fields: ["user_*"])
            for request in [backwards, sampleRequest(format: .ndjson), withFields] {
                let error = await #expect(throws: FullStoryAPIError.self) { try await h.client.createExport(request) }
                guard case .invalidRequest(let message)? = error else {
                    Issue.record("expected invalidRequest, got \(String(describing: error))")
                    continue
                }
                #expect(!message.isEmpty)
                #expect(error?.description.hasPrefix("This request cannot be sent:") == true)
            }
            let requests = try h.requests()
            #expect(requests.isEmpty)
        }
    }

    @Test("a FAILED export reports its error details and has nothing to download", arguments: Dialect.allCases)
    func failedOperation(dialect: Dialect) async throws {
        try await withHarness(dialect, emulator: { $0.rateFail = 1 }) { h in
            let operation = try await runToCompletion(h.client, sampleRequest())
            #expect(operation.state == .failed)
            #expect(operation.errorDetails?.contains("failed") == true)
            #expect(!operation.state.isInProgress)
            let error = await #expect(throws: FullStoryAPIError.self) {
                try await h.client.downloadLink(for: operation)
            }
            #expect(error?.description.contains("is FAILED, so it has nothing to download") == true)
        }
    }

    @Test("an unknown or tampered operation id is operationNotFound", arguments: Dialect.allCases)
    func unknownOperation(dialect: Dialect) async throws {
        try await withHarness(dialect, emulator: { $0.operationSeconds = 60 }) { h in
            let error = await #expect(throws: FullStoryAPIError.self) {
                try await h.client.getOperation("no-such-operation")
            }
            #expect(error == .operationNotFound(operationID: "no-such-operation"))

            let real = try await h.client.createExport(sampleRequest())
            var tampered = Array(real.id)
            tampered[5] = tampered[5] == "A" ? "B" : "A"
            await #expect(throws: FullStoryAPIError.operationNotFound(operationID: String(tampered))) {
                try await h.client.getOperation(String(tampered))
            }
        }
    }

    @Test(
        "an operation id stays valid across an emulator restart with the same seed and key", arguments: Dialect.allCases
    )
    func survivesRestart(dialect: Dialect) async throws {
        let settings = EmulatorConfiguration(
            apiKey: "restart-key", dialect: dialect.emulatorDialect, operationSeconds: 0.3, seed: 42,
            logger: quietLogger()
        )
        let operationID = try await withEmulator(settings) { first in
            try await FullStoryClient.withClient(clientConfiguration(first, dialect, key: "restart-key")) {
                try await $0.createExport(sampleRequest()).id
            }
        }

        try await withEmulator(settings) { second in
            try await FullStoryClient.withClient(clientConfiguration(second, dialect, key: "restart-key")) { client in
                var operation = try await client.getOperation(operationID)
                while operation.state.isInProgress {
                    try await Task.sleep(for: .milliseconds(50))
                    operation = try await client.getOperation(operationID)
                }
                #expect(operation.state == .completed)
                let link = try await client.downloadLink(for: operation)
                #expect(link.url.port == second.port)
            }
        }

        // A different seed signs with a different key: the old id is unknown there.
        var other = settings
        other.seed = 43
        try await withEmulator(other) { third in
            try await FullStoryClient.withClient(clientConfiguration(third, dialect, key: "restart-key")) { client in
                await #expect(throws: FullStoryAPIError.operationNotFound(operationID: operationID)) {
                    try await client.getOperation(operationID)
                }
            }
        }
    }

    @Test("the emulator checks create requests and says what is wrong", arguments: Dialect.allCases)
    func emulatorValidation(dialect: Dialect) async throws {
        try await withHarness(dialect) { h in
            let url = h.emulator.baseURL.appendingPathComponent("segments/v1/exports")
            let events = dialect == .seed ? "events" : "TYPE_EVENT"
            let format = dialect == .seed ? "json" : "FORMAT_JSON"
            let cases: [(body: String, status: Int, says: String)] = [
                (#"{"type":"\#(events)","format":"\#(format)"}"#, 400, "segmentId is required"),
                (#"{"segmentId":"everyone","format":"\#(format)"}"#, 400, "type is required"),
                (#"{"segmentId":"everyone","type":"EVENTS","format":"\#(format)"}"#, 400, "type must be one of"),
                (#"{"segmentId":"everyone","type":"\#(events)","format":"xml"}"#, 400, "format must be one of"),
                (
                    #"{"segmentId":"everyone","type":"\#(events)","format":"\#(format)","timeRange":{"start":"2026-01-02T00:00:00Z","end":"2026-01-01T00:00:00Z"}}"#,
                    400, "timeRange.start must be before timeRange.end"
                ),
                (
                    #"{"segmentId":"everyone","type":"\#(events)","format":"\#(format)","timeRange":{"start":"yesterday"}}"#,
                    400, "RFC 3339"
                ),
                ("not json", 400, "not valid JSON"),
                (
                    #"{"segmentId":"everyone","type":"\#(events)","format":"\#(format)","someday":"a new field"}"#, 200,
                    ""
                ),
            ]
            for item in cases {
                let answer = try await rawRequest(url, method: "POST", body: item.body)
                #expect(answer.status == item.status, "\(item.body)")
                if !item.says.isEmpty {
                    #expect(
                        (answer.json["message"] as? String)?.contains(item.says) == true,
                        "\(item.body) → \(answer.json)")
                    #expect(answer.json["code"] as? Int == item.status)
                }
            }
            if dialect == .fullstory {
                // Production requires a format; the contract does not.
                let answer = try await rawRequest(
                    url, method: "POST", body: #"{"segmentId":"everyone","type":"TYPE_EVENT"}"#)
                #expect(answer.status == 400)
            }
            let unauthorized = try await rawRequest(url, method: "POST", body: "{}", authorization: nil)
            #expect(unauthorized.status == 401)
            #expect(unauthorized.json["code"] as? Int == 401)
        }
    }

    private func clientConfiguration(_ emulator: Emulator, _ dialect: Dialect, key: String)
        -> FullStoryClient.Configuration
    {
        FullStoryClient.Configuration(
            endpoint: emulator.baseURL, dialect: dialect, apiKey: APIKey(key),
            retryPolicy: instantRetryPolicy(WaitRecorder()), logger: quietLogger()
        )
    }
}
