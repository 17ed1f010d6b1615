import Foundation
import FullStoryAPI
import FullStoryContract
import Logging
import SegSyncEmulator
import SegSyncVocabulary
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

extension Dialect {
    var emulatorDialect: EmulatorConfiguration.Dialect { self == .seed ? .seed : .fullstory }
}

/// Collects the waits a retry policy or rate limiter asks for, and returns at once, so
/// tests check exact backoffs without spending the time.
actor WaitRecorder {
    private(set) var waits: [Duration] = []

    func record(_ wait: Duration) {
        waits.append(wait)
    }
}

/// A running emulator, a client pointed at it, and a scratch folder.
struct Harness {
    let emulator: Emulator
    let client: FullStoryClient
    let retryWaits: WaitRecorder
    let limiterWaits: WaitRecorder
    let folder: URL
    let logPath: String

    /// One line of the emulator's request log.
    struct LoggedRequest: Decodable {
        var method: String
        var path: String
        var status: Int
        var kind: String
        var fault: String?
        var range: String?
        var auth: Bool
    }

    /// The answered requests, of one kind or all; a create's arrival mark
    /// (`createReceived`) is not one.
    func requests(_ kind: String? = nil) throws -> [LoggedRequest] {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        let all = try text.split(separator: "\n").map {
            try JSONDecoder().decode(LoggedRequest.self, from: Data($0.utf8))
        }.filter { $0.kind != "createReceived" }
        return kind.map { kind in all.filter { $0.kind == kind } } ?? all
    }

    func path(_ name: String) -> String {
        folder.appendingPathComponent(name).path
    }
}

/// A retry policy that never really sleeps and always jitters to half the ceiling.
func instantRetryPolicy(_ recorder: WaitRecorder, maxAttempts: Int = 6) -> RetryPolicy {
    RetryPolicy(maxAttempts: maxAttempts, random: { 0.5 }, sleep: { await recorder.record($0) })
}

func quietLogger() -> Logger {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}

/// Starts an emulator (as configured), a client for it, runs `body`, and tears all down.
func withHarness(
    _ dialect: Dialect = .seed,
    emulator configureEmulator: (inout EmulatorConfiguration) -> Void = { _ in },
    client configureClient: (inout FullStoryClient.Configuration) -> Void = { _ in },
    _ body: (Harness) async throws -> Void
) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("segsync-api-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let logPath = folder.appendingPathComponent("requests.jsonl").path

    var emulatorConfiguration = EmulatorConfiguration(
        dialect: dialect.emulatorDialect,
        operationSeconds: 0,
        requestLogPath: logPath,
        logger: quietLogger()
    )
    configureEmulator(&emulatorConfiguration)
    let emulator = try await Emulator.start(emulatorConfiguration)

    let retryWaits = WaitRecorder()
    let limiterWaits = WaitRecorder()
    var clientConfiguration = FullStoryClient.Configuration(
        endpoint: emulator.baseURL,
        dialect: dialect,
        apiKey: APIKey(emulatorConfiguration.apiKey),
        retryPolicy: instantRetryPolicy(retryWaits),
        connectTimeout: .seconds(2),
        requestTimeout: .seconds(30),
        readTimeout: .seconds(10),
        logger: quietLogger()
    )
    configureClient(&clientConfiguration)
    let limiter = RateLimiter(
        RateLimit(perSecond: 1000, burst: 1000),
        sleep: { await limiterWaits.record($0) }
    )
    let client = try FullStoryClient(configuration: clientConfiguration, rateLimiter: limiter)
    let harness = Harness(
        emulator: emulator, client: client, retryWaits: retryWaits, limiterWaits: limiterWaits, folder: folder,
        logPath: logPath
    )
    do {
        try await body(harness)
    } catch {
        try? await client.shutdown()
        await emulator.stop()
        throw error
    }
    try await client.shutdown()
    await emulator.stop()
}

/// Runs `body` against an emulator that is stopped afterwards, also when `body` throws.
@discardableResult
func withEmulator<T>(_ configuration: EmulatorConfiguration, _ body: (Emulator) async throws -> T) async throws -> T {
    let emulator = try await Emulator.start(configuration)
    do {
        let result = try await body(emulator)
        await emulator.stop()
        return result
    } catch {
        await emulator.stop()
        throw error
    }
}

/// An export request every test can use: one or two hours of events for a known segment.
func sampleRequest(
    _ type: ExportType = .events, format: ExportFormat? = .json, hours: Int = 2, segment: String = "checkout_abandoners"
) -> ExportRequest {
    let start = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01T00:00:00Z
    return ExportRequest(
        segmentID: segment,
        type: type,
        format: format,
        timeRange: TimeRange(start: start, end: start.addingTimeInterval(Double(hours) * 3600))
    )
}

/// Creates an export and polls until it is no longer in progress.
func runToCompletion(_ client: FullStoryClient, _ request: ExportRequest, timeout: Duration = .seconds(10)) async throws
    -> ExportOperation
{
    var operation = try await client.createExport(request)
    let deadline = ContinuousClock.now + timeout
    while operation.state.isInProgress {
        guard ContinuousClock.now < deadline else {
            Issue.record("Operation still \(operation.state) after \(timeout).")
            return operation
        }
        try await Task.sleep(for: .milliseconds(50))
        operation = try await client.getOperation(operation.id)
    }
    return operation
}

/// Runs a command-line tool and returns its standard output.
func run(_ tool: String, _ arguments: [String]) throws -> Data {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [tool] + arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "\(tool) \(arguments.joined(separator: " ")) failed")
    return data
}

/// `sha256sum`, independently of the client's own hashing.
func sha256OfFile(_ path: String) throws -> String {
    let output = String(decoding: try run("sha256sum", [path]), as: UTF8.self)
    return String(output.prefix(64))
}

func fileSize(_ path: String) throws -> Int64 {
    ((try FileManager.default.attributesOfItem(atPath: path))[.size] as? NSNumber)?.int64Value ?? -1
}

/// A plain HTTP call, for requests the client would never send.
func rawRequest(
    _ url: URL, method: String = "GET", body: String? = nil, authorization: String? = "Basic emulator-key"
) async throws -> (status: Int, json: [String: Any]) {
    var request = URLRequest(url: url)
    request.httpMethod = method
    if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
    if let body {
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    }
    let (data, response) = try await URLSession.shared.data(for: request)
    let status = (response as? HTTPURLResponse)?.statusCode ?? -1
    let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    return (status, json)
}

/// A wall clock for the emulator (``EmulatorConfiguration/now``) that stands still until
/// the test moves it.
final class HandClock: Sendable {
    private let instant: Mutex<Date>

    init(_ start: Date = Date()) { instant = Mutex(start) }

    var now: @Sendable () -> Date { { self.instant.withLock { $0 } } }

    func advance(by seconds: TimeInterval) { instant.withLock { $0 += seconds } }
}
