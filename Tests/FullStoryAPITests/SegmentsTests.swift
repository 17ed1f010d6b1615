import Foundation
import FullStoryAPI
import FullStoryContract
import SegSyncVocabulary
import Testing

@Suite("Segments", .timeLimit(.minutes(5)))
struct SegmentsTests {
    @Test("lists every segment by turning all pages", arguments: Dialect.allCases)
    func listsEveryPage(dialect: Dialect) async throws {
        try await withHarness(dialect) { h in
            let segments = try await h.client.listSegments(pageSize: 7)
            // 250 generated + everyone + 3 named ones.
            #expect(segments.count == 254)
            #expect(Set(segments.map(\.id)).count == 254)
            let everyone = try #require(segments.first)
            #expect(everyone.id == "everyone")
            #expect(everyone.created == nil)
            #expect(everyone.creator == nil)
            #expect(try h.requests("listSegments").count == 37)  // ceil(254 / 7)
        }
    }

    @Test("a page without a limit has the server's default of 20 and a next token", arguments: Dialect.allCases)
    func defaultPage(dialect: Dialect) async throws {
        try await withHarness(dialect) { h in
            let page = try await h.client.listSegmentsPage()
            #expect(page.segments.count == 20)
            let token = try #require(page.nextPageToken)
            let next = try await h.client.listSegmentsPage(pageToken: token)
            #expect(next.segments.first?.id != page.segments.first?.id)
        }
    }

    @Test("a page size outside 1–100 is refused before any request", arguments: [0, 101])
    func pageSizeBounds(size: Int) async throws {
        try await withHarness { h in
            let error = await #expect(throws: FullStoryAPIError.self) {
                try await h.client.listSegments(pageSize: size)
            }
            guard case .invalidRequest(let message)? = error else {
                Issue.record("expected invalidRequest, got \(String(describing: error))")
                return
            }
            #expect(message.contains("between 1 and 100"))
            let requests = try h.requests()
            #expect(requests.isEmpty)
        }
    }

    @Test("the emulator answers 400 for a limit outside 1–100")
    func emulatorLimitBounds() async throws {
        try await withHarness { h in
            for limit in ["0", "101", "abc"] {
                let answer = try await rawRequest(
                    h.emulator.baseURL.appendingPathComponent("segments/v1").appending(queryItems: [
                        .init(name: "limit", value: limit)
                    ]))
                #expect(answer.status == 400)
                #expect((answer.json["message"] as? String)?.contains("limit") == true)
                #expect(answer.json["code"] as? Int == 400)
            }
        }
    }

    @Test("gets one segment with its creator and creation time", arguments: Dialect.allCases)
    func getSegment(dialect: Dialect) async throws {
        try await withHarness(dialect) { h in
            let segment = try await h.client.getSegment("checkout_abandoners")
            #expect(segment.name == "Checkout abandoners")
            #expect(segment.creator == "ana@example.com")
            #expect(segment.created == Date(timeIntervalSince1970: 1_735_732_800))
            #expect((segment.url != nil) == (dialect == .fullstory))
        }
    }

    @Test("an unknown segment is a segmentNotFound error naming it", arguments: Dialect.allCases)
    func unknownSegment(dialect: Dialect) async throws {
        try await withHarness(dialect) { h in
            let error = await #expect(throws: FullStoryAPIError.self) {
                try await h.client.getSegment("no-such-segment")
            }
            #expect(error == .segmentNotFound(segmentID: "no-such-segment"))
            #expect(error?.description.contains("no-such-segment") == true)
            #expect(error?.isTransient == false)
        }
    }

    @Test(
        "a rejected key names the variable that holds it and the role needed, never the key",
        arguments: Dialect.allCases)
    func unauthorized(dialect: Dialect) async throws {
        try await withHarness(
            dialect,
            client: {
                $0.apiKey = APIKey("na1.wrong-secret-key")
                $0.keyEnvironmentVariable = "ACME_FULLSTORY_KEY"
            }
        ) { h in
            let error = await #expect(throws: FullStoryAPIError.self) { try await h.client.listSegmentsPage() }
            guard case .unauthorized(let variable, let message)? = error else {
                Issue.record("expected unauthorized, got \(String(describing: error))")
                return
            }
            #expect(variable == "ACME_FULLSTORY_KEY")
            #expect(message?.contains("API key") == true)
            let sentence = try #require(error?.description)
            #expect(sentence.contains("ACME_FULLSTORY_KEY"))
            #expect(sentence.contains("Admin or Architect"))
            #expect(!sentence.contains("wrong-secret-key"))
            #expect(error?.isTransient == false)
            // Not retried: a wrong key does not become right.
            #expect(try h.requests("listSegments").count == 1)
        }
    }
}
