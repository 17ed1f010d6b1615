import Foundation
import Logging
import SegSyncVocabulary
import Testing

import FullStoryContract
@testable import FullStoryAPI

@Suite("Lenient decoding and per-dialect encoding", .timeLimit(.minutes(5)))
struct DecodingTests {
    private func operation(_ json: String) throws -> WireOperation {
        try JSONDecoder().decode(WireOperation.self, from: Data(json.utf8))
    }

    @Test(
        "estimatePctComplete may be an integer, a float or a numeric string",
        arguments: [("40", 40.0), ("40.5", 40.5), ("\"75\"", 75.0), ("\"12.5%\"", 12.5), ("100", 100.0)]
    )
    func percent(raw: String, expected: Double) throws {
        let decoded = try operation(#"{"id":"op1","state":"RUNNING","estimatePctComplete":\#(raw)}"#)
        #expect(decoded.operation.estimatePctComplete == expected)
    }

    @Test("a percentage outside 0–100 is clamped, and one that is not a number is dropped",
          arguments: [("1e300", 100.0 as Double?), ("-5", 0), ("\"250%\"", 100), ("\"nan\"", nil), ("\"inf%\"", nil)])
    func hostilePercent(raw: String, expected: Double?) throws {
        let decoded = try operation(#"{"id":"op","state":"RUNNING","estimatePctComplete":\#(raw)}"#)
        #expect(decoded.operation.estimatePctComplete == expected)
    }

    @Test("a resumed download's announced size never overflows: an impossible sum is unknown")
    func resumedTotal() throws {
        let range = try #require(ContentRange("bytes 100-199/*"))
        #expect(range.total(resumedAt: 100, contentLength: 100) == 200)
        #expect(range.total(resumedAt: 100, contentLength: Int64.max) == nil)
        #expect(range.total(resumedAt: 100, contentLength: nil) == nil)
        #expect(ContentRange("bytes 0-99/9223372036854775808") .map { $0.total == nil } == true)
    }

    @Test("a percentage of the wrong type is dropped, not fatal")
    func badPercent() throws {
        let decoded = try operation(#"{"id":"op1","state":"RUNNING","estimatePctComplete":{"value":3}}"#)
        #expect(decoded.operation.estimatePctComplete == nil)
        #expect(decoded.operation.state == .running)
    }

    @Test("an unknown state is kept and counts as still in progress")
    func unknownState() throws {
        let decoded = try operation(#"{"id":"op1","state":"QUEUED_FOR_ARCHIVE"}"#)
        #expect(decoded.operation.state == .unknown("QUEUED_FOR_ARCHIVE"))
        #expect(decoded.operation.state.isInProgress)
        #expect(decoded.operation.state.description == "QUEUED_FOR_ARCHIVE")
        #expect(try operation(#"{"id":"op1","state":"completed"}"#).operation.state == .completed)
    }

    @Test("unknown fields are ignored and known ones still read")
    func unknownFields() throws {
        let decoded = try operation(
            #"""
            {"id":"op1","state":"COMPLETED","novel":{"deep":[1,2,3]},"type":"SEARCH_EXPORT","createdAt":"2026-11-27T13:00:00.123Z",
             "finishedAt":"2026-11-27T14:00:00+01:00","results":{"searchExportId":"se-9","expires":"2026-12-04T13:00:00Z","extra":true}}
            """#
        )
        let operation = decoded.operation
        #expect(operation.type == "SEARCH_EXPORT")
        let created = try #require(operation.createdAt)
        #expect(abs(created.timeIntervalSince1970 - 1_795_784_400.123) < 0.0005)
        #expect(operation.finishedAt == Date(timeIntervalSince1970: 1_795_784_400))
        #expect(operation.results?.searchExportID == "se-9")
        #expect(operation.results?.expires == Date(timeIntervalSince1970: 1_796_389_200))
        #expect(operation.results?.downloadURL == nil)
    }

    @Test("an unknown or missing state is logged as a warning, not thrown")
    func unknownStateWarning() throws {
        let messages = CapturedLogs()
        var logger = Logger(label: "test") { _ in messages }
        logger.logLevel = .info
        let client = try FullStoryClient(
            configuration: .init(endpoint: URL(string: "http://127.0.0.1:1")!, apiKey: APIKey("k"), logger: logger)
        )
        defer { try? client.httpClient.syncShutdown() }

        let odd = try client.readOperation(
            Data(#"{"id":"op1","state":"ARCHIVING","estimatePctComplete":"7"}"#.utf8), what: "op", stateExpected: true)
        #expect(odd.state.isInProgress)
        #expect(messages.lines.count == 1)
        #expect(messages.lines.first?.contains("does not know") == true)
        #expect(messages.lines.first?.contains("ARCHIVING") == true)

        _ = try client.readOperation(Data(#"{"id":"op2"}"#.utf8), what: "op", stateExpected: true)
        #expect(messages.lines.last?.contains("no state") == true)
        _ = try client.readOperation(Data(#"{"operationId":"op3"}"#.utf8), what: "op", stateExpected: false)
        #expect(messages.lines.count == 2)
    }

    @Test("a production create answer is just an operation id")
    func operationIdOnly() throws {
        let decoded = try operation(#"{"operationId":"op-42"}"#)
        #expect(decoded.operation.id == "op-42")
        #expect(decoded.operation.state == .pending)
        #expect(decoded.rawState == nil)
    }

    @Test("an unreadable date is dropped, not fatal")
    func badDate() throws {
        let decoded = try operation(#"{"id":"op1","state":"PENDING","createdAt":"last tuesday"}"#)
        #expect(decoded.operation.createdAt == nil)
    }

    @Test(
        "the next page token is found under every spelling",
        arguments: ["pagination_token", "nextPaginationToken", "next_pagination_token"]
    )
    func paginationToken(key: String) throws {
        let page = try JSONDecoder().decode(
            WireSegmentList.self, from: Data(#"{"segments":[{"id":"a","name":"A","url":"u"}],"\#(key)":"tok"}"#.utf8)
        ).page
        #expect(page.nextPageToken == "tok")
        #expect(page.segments == [Segment(id: "a", name: "A", url: "u")])
    }

    @Test("an empty token or none means the last page")
    func lastPage() throws {
        for body in [#"{"segments":[],"nextPaginationToken":""}"#, #"{"segments":[]}"#, #"{}"#] {
            let page = try JSONDecoder().decode(WireSegmentList.self, from: Data(body.utf8)).page
            #expect(page.nextPageToken == nil)
        }
    }

    @Test("a missing id is a readable reason naming the field, not a DecodingError dump")
    func readableFailure() {
        do {
            _ = try JSONDecoder().decode(
                WireSegmentList.self, from: Data(#"{"segments":[{"id":"a"},{"name":"b"}]}"#.utf8))
            Issue.record("decoding should have failed")
        } catch {
            #expect(readableReason(error) == "field 'segments[1].id' is missing")
        }
        do {
            _ = try JSONDecoder().decode(WireSegmentList.self, from: Data("<html>".utf8))
        } catch {
            #expect(readableReason(error) == "the body is not valid JSON")
        }
    }

    @Test("error bodies give their message, or a short text, or nothing")
    func errorMessages() {
        #expect(WireError.message(in: Data(#"{"code":400,"message":"bad time range"}"#.utf8)) == "bad time range")
        #expect(WireError.message(in: Data("upstream timed out".utf8)) == "upstream timed out")
        #expect(WireError.message(in: Data("<html><body>502</body></html>".utf8)) == nil)
        #expect(WireError.message(in: Data()) == nil)
    }

    private func encoded(_ request: ExportRequest, _ dialect: Dialect) throws -> [String: Any] {
        let data = try WireCreateExportRequest(request, dialect: dialect).encoded()
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("create requests are spelled per dialect")
    func createSpelling() throws {
        var request = sampleRequest(.individuals, format: .csv, hours: 1)
        request.timezone = "Europe/Berlin"
        let seed = try encoded(request, .seed)
        #expect(seed["type"] as? String == "individuals")
        #expect(seed["format"] as? String == "csv")
        #expect(seed["segmentId"] as? String == "checkout_abandoners")
        #expect(
            (seed["timeRange"] as? [String: String]) == [
                "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z",
            ])
        #expect(seed["timezone"] == nil)

        request.fields = ["user_*", "evt_*"]
        request.format = .ndjson
        request.type = .events
        let production = try encoded(request, .fullstory)
        #expect(production["type"] as? String == "TYPE_EVENT")
        #expect(production["format"] as? String == "FORMAT_NDJSON")
        #expect(production["timezone"] as? String == "Europe/Berlin")
        #expect(production["fields"] as? [String] == ["user_*", "evt_*"])

        // Production requires a format: JSON when none was asked for.
        let bare = try encoded(ExportRequest(segmentID: "everyone", type: .individuals), .fullstory)
        #expect(bare["format"] as? String == "FORMAT_JSON")
        #expect(bare["type"] as? String == "TYPE_INDIVIDUAL")
    }
}

/// A log handler that keeps what it is given, to check warnings.
final class CapturedLogs: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    var lines: [String] { lock.withLock { stored } }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let details = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
            separator: " ")
        lock.withLock { stored.append("\(event.level) \(event.message) \(details)") }
    }
}
