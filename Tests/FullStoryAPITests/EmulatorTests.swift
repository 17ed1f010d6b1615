import Foundation
import FullStoryAPI
import FullStoryContract
import SegSyncEmulator
import Testing
import TestSupport

@Suite("Emulator", .timeLimit(.minutes(5)))
struct EmulatorTests {
    @Test("settings that cannot work are refused with a sentence")
    func invalidConfiguration() async {
        var configuration = EmulatorConfiguration(logger: quietLogger())
        configuration.rate429 = 1.5
        #expect(configuration.problem() == "--rate-429 must be between 0 and 1, not 1.5.")
        await #expect(throws: Emulator.StartError.self) { try await Emulator.start(configuration) }
        configuration.rate429 = 0
        configuration.serverErrorStatus = 404
        #expect(configuration.problem()?.contains("5xx") == true)
    }

    @Test("a port already in use is reported, not hung on")
    func portInUse() async throws {
        try await withEmulator(EmulatorConfiguration(logger: quietLogger())) { first in
            let error = await #expect(throws: Emulator.StartError.self) {
                try await Emulator.start(EmulatorConfiguration(port: first.port, logger: quietLogger()))
            }
            #expect(error?.description.contains("could not listen on 127.0.0.1:\(first.port)") == true)
        }
    }

    @Test("stop() answers the request in flight before the server goes (graceful shutdown), then refuses connections")
    func gracefulStop() async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("segsync-graceful-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let configuration = EmulatorConfiguration(operationSeconds: 0, requestLogPath: log, createLatency: 1, logger: quietLogger())
        let emulator = try await Emulator.start(configuration)
        let body = #"{"segmentId":"everyone","type":"events","format":"csv","timeRange":{"start":"2026-11-27T00:00:00Z","end":"2026-11-27T01:00:00Z"}}"#
        async let answer = rawRequest(emulator.baseURL.appendingPathComponent("segments/v1/exports"), method: "POST", body: body)
        // The emulator logs the create as it takes it in, before its late answer.
        #expect(await waitUntil { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("answer-delayed") })
        await emulator.stop(grace: .seconds(30))
        let created = try await answer
        #expect(created.status == 200, "\(created.json)")
        await #expect(throws: (any Error).self) { try await rawRequest(emulator.baseURL.appendingPathComponent("segments/v1")) }
    }

    @Test("routes: unknown paths and methods are the API's JSON 404 without a key; API paths need the key; downloads do not")
    func routes() async throws {
        try await withEmulator(EmulatorConfiguration(apiKey: "emulator-key", logger: quietLogger())) { emulator in
            let base = emulator.baseURL
            let unknown = try await rawRequest(base.appendingPathComponent("nowhere"), authorization: nil)
            #expect(unknown.status == 404 && (unknown.json["message"] as? String)?.hasPrefix("There is no such endpoint: GET /nowhere") == true)
            let wrongMethod = try await rawRequest(base.appendingPathComponent("segments/v1/exports"), authorization: nil)
            #expect(wrongMethod.status == 404)
            #expect(try await rawRequest(base.appendingPathComponent("segments/v1"), authorization: nil).status == 401)
            #expect(try await rawRequest(base.appendingPathComponent("segments/v1"), authorization: "Basic wrong").status == 401)
            let segment = try await rawRequest(base.appendingPathComponent("segments/v1/everyone"))
            #expect(segment.status == 200 && segment.json["id"] as? String == "everyone")
            // A download link is its own credential: no key, and a bad signature is 403.
            #expect(try await rawRequest(base.appendingPathComponent("downloads/bogus"), authorization: nil).status == 403)
        }
    }

    @Test("an unreadable page token gives an empty last page")
    func unknownPageToken() async throws {
        try await withHarness { h in
            let page = try await h.client.listSegmentsPage(limit: 5, pageToken: "not-a-token")
            #expect(page.segments.isEmpty)
            #expect(page.nextPageToken == nil)
        }
    }

    @Test("production field selection picks the matching columns")
    func fieldSelection() async throws {
        try await withHarness(.fullstory) { h in
            var request = sampleRequest(format: .csv, hours: 1)
            request.fields = ["IndvId", "Event*"]
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, request))
            _ = try await h.client.download(link.url, to: h.path("fields.csv"), decompress: true)
            let text = try String(contentsOfFile: h.path("fields.csv"), encoding: .utf8)
            let header = text.split(separator: "\n").first.map(String.init)
            #expect(
                header == "IndvId,EventStart,EventSessionOffset,EventType,EventSubType,EventCustomName,EventTargetText,"
                    + "EventTargetSelector,EventModFrustrated,EventModDead,EventModError"
            )
        }
    }

    @Test("an individuals export has one row per person, the same people every time")
    func individuals() async throws {
        try await withHarness(emulator: { $0.rowsPerHour = 30 }) { h in
            var digests: [String] = []
            for hours in [2, 2] {
                let link = try await h.client.downloadLink(
                    for: runToCompletion(h.client, sampleRequest(.individuals, format: .json, hours: hours)))
                let result = try await h.client.download(link.url, to: h.path("people.json"), decompress: true)
                digests.append(result.sha256)
                let rows = try #require(
                    try JSONSerialization.jsonObject(
                        with: Data(contentsOf: URL(fileURLWithPath: h.path("people.json")))) as? [[String: Any]]
                )
                #expect(rows.count == 60)
                #expect(
                    rows.allSatisfy {
                        $0["UserEmail"] is String && $0["UserCreated"] is String && $0["EventType"] == nil
                    })
                #expect(Set(rows.compactMap { $0["IndvId"] as? Int64 }).count == 60)
            }
            #expect(digests[0] == digests[1])
        }
    }

    @Test("the request log records downloads without their signed query")
    func requestLogHidesSignatures() async throws {
        try await withHarness { h in
            let link = try await h.client.downloadLink(for: runToCompletion(h.client, sampleRequest()))
            _ = try await h.client.download(link.url, to: h.path("x"), decompress: false)
            let log = try String(contentsOfFile: h.logPath, encoding: .utf8)
            #expect(!log.contains("sig="))
            #expect(!log.contains("expires="))
            // A download retried after a read timeout on a loaded machine logs twice.
            let kinds = try h.requests().map(\.kind)
            #expect(kinds.first == "createExport" && kinds.contains("download"), "\(kinds)")
            #expect(Set(kinds).isSubset(of: ["createExport", "download"]), "\(kinds)")
        }
    }
}
