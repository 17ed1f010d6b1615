import Foundation
import FullStoryAPI
import FullStoryContract
import Testing

@Suite("Key, endpoint, redaction and error sentences", .timeLimit(.minutes(5)))
struct EnvironmentTests {
    @Test("the key is read from the named variable, trimmed, and never printed")
    func apiKey() throws {
        let key = try APIKey.fromEnvironment("MY_KEY", environment: ["MY_KEY": "  na1.secret\n"])
        #expect(key.secret == "na1.secret")
        #expect(!"\(key)".contains("secret"))
        #expect(!String(reflecting: key).contains("secret"))
        #expect(try APIKey.fromEnvironment(environment: ["FULLSTORY_API_KEY": "k"]).secret == "k")
    }

    @Test("a missing key names the variable to set")
    func missingKey() {
        #expect(throws: FullStoryAPIError.missingAPIKey(keyEnvironmentVariable: "ACME_KEY")) {
            try APIKey.fromEnvironment("ACME_KEY", environment: ["ACME_KEY": "  "])
        }
        let sentence = FullStoryAPIError.missingAPIKey(keyEnvironmentVariable: "ACME_KEY").description
        #expect(sentence.contains("ACME_KEY"))
        #expect(sentence.contains("Admin or Architect"))
    }

    @Test("FULLSTORY_API_URL overrides the configured endpoint, which overrides production")
    func endpointPrecedence() throws {
        #expect(try APIEndpoint.resolve(environment: [:]) == URL(string: "https://api.fullstory.com")!)
        #expect(
            try APIEndpoint.resolve(configured: "https://api.eu1.fullstory.com", environment: [:]).host
                == "api.eu1.fullstory.com")
        let overridden = try APIEndpoint.resolve(
            configured: "https://api.eu1.fullstory.com", environment: ["FULLSTORY_API_URL": "http://127.0.0.1:8080"]
        )
        #expect(overridden == URL(string: "http://127.0.0.1:8080")!)
    }

    @Test(
        "one rule for the endpoint: --endpoint, else FULLSTORY_API_URL, else the manifest, else production; `emulator` from any",
        arguments: [
            // (flag, environment, manifest) → effective
            (nil, nil, nil, "https://api.fullstory.com"),
            (nil, nil, "https://API.eu1.fullstory.com:443/", "https://api.eu1.fullstory.com"),
            (nil, "http://127.0.0.1:8080", "https://api.eu1.fullstory.com", "http://127.0.0.1:8080"),
            ("http://localhost:9", "http://127.0.0.1:8080", "https://api.eu1.fullstory.com", "http://localhost:9"),
            (nil, "  ", "https://api.eu1.fullstory.com", "https://api.eu1.fullstory.com"),
            ("emulator", "http://127.0.0.1:8080", nil, "emulator"),
            (nil, "emulator", "https://api.fullstory.com", "emulator"),
            (nil, nil, "emulator", "emulator"),
            (nil, "https://api.fullstory.com", "emulator", "https://api.fullstory.com"),
        ] as [(String?, String?, String?, String)])
    func oneEndpointRule(flag: String?, environment: String?, manifest: String?, effective: String) throws {
        let variables = environment.map { ["FULLSTORY_API_URL": $0] } ?? [:]
        #expect(try APIEndpoint.effective(flag: flag, environment: variables, configured: manifest) == effective)
    }

    @Test("an unusable endpoint is refused naming where it came from, redacted")
    func endpointSources() {
        for (flag, environment, source) in [("http://user:pw@10.0.0.1", nil, "--endpoint"), (nil, "http://10.0.0.1?token=abc", "FULLSTORY_API_URL")] {
            let variables = environment.map { ["FULLSTORY_API_URL": $0] } ?? [:]
            #expect {
                try APIEndpoint.effective(flag: flag, environment: variables, configured: "https://api.fullstory.com")
            } throws: { error in
                let text = "\(error)"
                return text.contains(source) && !text.contains("pw@") && !text.contains("abc")
            }
        }
        // A signed link that cannot be used: its signature stays out of the sentence.
        #expect {
            try APIEndpoint.validate("http://10.0.0.1/downloads/t?sig=s3cr3t&expires=9", source: "the download link", use: .downloadLink)
        } throws: { error in
            let text = "\(error)"
            return text.contains("The download link") && !text.contains("s3cr3t") && !text.contains("expires=")
        }
    }

    @Test(
        "plain http is allowed to this machine only",
        arguments: [
            ("http://localhost:9000", true), ("http://127.0.0.1:1", true), ("http://127.8.9.10", true),
            ("http://[::1]:80", true),
            ("https://api.fullstory.com", true), ("http://api.fullstory.com", false), ("http://10.0.0.5:8080", false),
            ("http://localhost.evil.example", false), ("ftp://127.0.0.1", false), ("api.fullstory.com", false),
            ("http://127.evil.com", false), ("http://127.0.0.1.nip.io", false), ("http://127.0.0.01x", false),
            ("https://user:secret@api.fullstory.com", false), ("https://api.fullstory.com/?x=1", false),
        ]
    )
    func plainHTTP(endpoint: String, allowed: Bool) {
        let result = Result { () throws(FullStoryAPIError) in try APIEndpoint.validate(endpoint) }
        switch result {
        case .success:
            #expect(allowed, "\(endpoint) should be refused")
        case .failure(let error):
            #expect(!allowed, "\(endpoint) should be allowed, got: \(error)")
            #expect(error.description.hasSuffix("."))
        }
    }

    @Test("a client refuses a plain-http endpoint that is not loopback")
    func clientRefusesPlainHTTP() {
        let configuration = FullStoryClient.Configuration(
            endpoint: URL(string: "http://api.example.com")!, apiKey: APIKey("k"))
        #expect(throws: FullStoryAPIError.self) { try FullStoryClient(configuration: configuration) }
    }

    @Test(
        "redaction keeps scheme, host and path, and hides the query and user info",
        arguments: [
            (
                "https://storage.example.com/b/f.gz?X-Goog-Signature=abc&expires=1",
                "https://storage.example.com/b/f.gz?<redacted>"
            ),
            ("http://127.0.0.1:8080/downloads/tok?sig=ff&expires=9", "http://127.0.0.1:8080/downloads/tok?<redacted>"),
            ("https://user:pass@example.com/x#frag", "https://example.com/x#<redacted>"),
            ("https://example.com/plain", "https://example.com/plain"),
        ]
    )
    func redaction(url: String, shown: String) throws {
        #expect(redacted(try #require(URL(string: url))) == shown)
        #expect(redacted(url) == shown)
    }

    @Test("links, results and operations print with the signature redacted")
    func linkDescription() throws {
        let url = try #require(URL(string: "https://s.example.com/f?sig=secret"))
        let link = DownloadLink(url: url)
        #expect("\(link)" == "https://s.example.com/f?<redacted>")
        #expect(String(reflecting: link) == "https://s.example.com/f?<redacted>")
        let operation = ExportOperation(id: "op", state: .completed, results: ExportResults(downloadURL: url))
        for text in ["\(operation)", String(reflecting: operation), "\(operation.results!)"] {
            #expect(!text.contains("secret"), "\(text)")
            #expect(text.contains("https://s.example.com/f?<redacted>"), "\(text)")
        }
    }

    static let everyError: [FullStoryAPIError] = [
        .unauthorized(keyEnvironmentVariable: "K", message: "nope"), .missingAPIKey(keyEnvironmentVariable: "K"),
        .invalidEndpoint("The endpoint is wrong."), .segmentNotFound(segmentID: "s"),
        .operationNotFound(operationID: "o"),
        .searchExportNotFound(searchExportID: "x"), .badRequest(message: "bad"),
        .invalidRequest(message: "the page size must be between 1 and 100, not 0."),
        .rateLimited(retryAfter: .seconds(3)),
        .serverError(status: 502, message: nil), .transport(cause: "the connection was reset"),
        .createOutcomeUnknown(cause: "the server closed the connection"),
        .expiredDownloadLink(url: "https://s/f?<redacted>"),
        .truncatedDownload(url: "https://s/f?<redacted>", expectedBytes: 10, receivedBytes: 4),
        .invalidDownload(url: "https://s/f", reason: "the gzip data is corrupt"),
        .unexpectedResponse(status: 200, detail: "field 'id' is missing"),
        .fileSystem(path: "/x", reason: "No space left on device"),
    ]

    @Test("every error is one readable sentence", arguments: everyError)
    func sentences(error: FullStoryAPIError) {
        let sentence = error.description
        #expect(sentence.first?.isUppercase == true)
        #expect(sentence.hasSuffix("."))
        #expect(!sentence.contains("NIO"))
        #expect(!sentence.contains("DecodingError"))
        #expect(error.errorDescription == sentence)
    }

    @Test(
        "rate limits, server errors, network trouble, expired links and short downloads are transient; the rest is not")
    func transient() {
        #expect(
            Self.everyError.filter(\.isTransient) == [
                .rateLimited(retryAfter: .seconds(3)), .serverError(status: 502, message: nil),
                .transport(cause: "the connection was reset"), .expiredDownloadLink(url: "https://s/f?<redacted>"),
                .truncatedDownload(url: "https://s/f?<redacted>", expectedBytes: 10, receivedBytes: 4),
            ]
        )
    }

    @Test("an endpoint's origin is one spelling per data source", arguments: [
        ("https://api.fullstory.com", "https://api.fullstory.com"), ("https://API.FullStory.com/", "https://api.fullstory.com"),
        ("https://api.fullstory.com:443", "https://api.fullstory.com"), ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://localhost:80", "http://localhost"), ("https://proxy.example/fullstory/", "https://proxy.example/fullstory"),
    ])
    func origins(text: String, origin: String) {
        #expect(APIEndpoint.origin(text) == origin)
    }
}
