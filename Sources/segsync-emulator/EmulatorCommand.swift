import ArgumentParser
import Dispatch
import Foundation
import Logging
import SegSyncEmulator

/// `segsync-emulator`: the FullStory Segments Export API on this machine, for tests,
/// demos and benchmarks. Flags map one to one onto ``EmulatorConfiguration``.
@main
struct EmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segsync-emulator",
        abstract: "Serve an emulation of the FullStory Segments Export API on this machine.",
        discussion: """
            Prints 'listening on http://HOST:PORT' as its first line, then serves until interrupted (Ctrl-C or SIGTERM). Clients authenticate with 'Authorization: Basic <api key>'.

            Endpoints: GET /segments/v1, GET /segments/v1/{id}, POST /segments/v1/exports, GET /operations/v1/{id}, and in the fullstory dialect GET /search/v1/exports/{searchExportId}/results. Downloads are served from the /downloads/... links the API hands out.

            Fault rates are probabilities from 0 to 1, drawn from generators seeded by --seed. Operation ids are signed with the API key and the seed, so an emulator restarted with the same two still answers for them.
            """
    )

    @Option(help: "Address to bind.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one.")
    var port = 0

    @Option(name: .customLong("api-key"), help: "The API key clients must send.")
    var apiKey = "emulator-key"

    @Option(help: "API flavour: seed (the contract) or fullstory (production quirks).")
    var dialect: Dialect = .seed

    @Option(
        name: .customLong("operation-seconds"),
        help: "Seconds an export takes to complete (fractions allowed; 0 = at once).")
    var operationSeconds: Double = 2

    @Option(name: .customLong("link-ttl"), help: "Seconds a download link stays valid.")
    var linkTTL: Double = 300

    @Option(
        name: .customLong("rows-per-hour"), help: "Rows per hour of an export's time range (the download size knob).")
    var rowsPerHour = 60

    @Option(
        name: .customLong("late-rate"),
        help: "Fraction of rows that arrive late (0–1): an export made soon after its range ends lacks those not yet in.")
    var lateRate: Double = 0

    @Option(name: .customLong("late-hours"), help: "How late a late row can be, in hours.")
    var lateHours: Double = 6

    @Option(
        name: .customLong("clock-start"),
        help: "Start the emulator's clock at this instant (2026-11-27T02:00:00Z); it runs on from there. Responses' Date header keeps the real time, so a client that matches createdAt against it (segsync's adoption of a lost create) finds nothing while the clock is moved.")
    var clockStart: String?

    @Option(name: .customLong("request-log"), help: "Append one JSON line per request to this file.")
    var requestLog: String?

    @Option(help: "Seed for fault draws and for signing ids.")
    var seed: UInt64 = 0

    @Option(name: .customLong("segments"), help: "Generated segments besides the built-in ones.")
    var generatedSegments = 250

    @Option(name: .customLong("download-host"), help: "Host name put in download links (default: the request's host).")
    var downloadHost: String?

    @Flag(
        name: .customLong("no-ranges"),
        help: "Ignore Range requests and do not send Accept-Ranges (clients must restart dropped downloads).")
    var noRanges = false

    @Option(name: .customLong("rate-429"), help: "Share of API calls answered 429 with Retry-After.")
    var rate429: Double = 0

    @Option(
        name: .customLong("retry-after"),
        help: ArgumentHelp(
            "Retry-After sent with injected 429s and 503s: whole seconds, or any text sent as it is (to test clients against hostile headers).",
            valueName: "value"))
    var retryAfter = "1"

    @Option(
        name: .customLong("create-latency"),
        help: ArgumentHelp(
            "Seconds a create takes to answer after the export exists (a client interrupted meanwhile must still learn its id).",
            valueName: "seconds"))
    var createLatency: Double = 0

    @Option(name: .customLong("slow-creates"), help: ArgumentHelp("Only the first N creates wait --create-latency (default: all).", valueName: "n"))
    var slowCreates: Int?

    @Option(
        name: .customLong("faults-on"),
        help: ArgumentHelp("Inject 429, 5xx and reset faults only into these endpoints (comma-separated request-log kinds, like createExport).", valueName: "kinds"))
    var faultsOn: String?

    @Option(name: .customLong("rate-5xx"), help: "Share of API calls answered with --server-error-status.")
    var rate5xx: Double = 0

    @Option(
        name: .customLong("server-error-status"),
        help: "Status for injected server errors (503 also sends Retry-After).")
    var serverErrorStatus = 500

    @Option(name: .customLong("rate-reset"), help: "Share of API calls read in full, then closed without an answer.")
    var rateReset: Double = 0

    @Option(
        name: .customLong("rate-drop"),
        help: "Share of downloads whose connection drops part-way (resumed requests are never dropped).")
    var rateDrop: Double = 0

    @Option(
        name: .customLong("rate-truncate"),
        help: "Share of download responses that promise the full Content-Length but close early.")
    var rateTruncate: Double = 0

    @Option(name: .customLong("rate-fail"), help: "Share of exports that end FAILED.")
    var rateFail: Double = 0

    @Option(name: .customLong("rate-expired-link"), help: "Share of download links handed out already expired.")
    var rateExpiredLink: Double = 0

    @Option(
        name: .customLong("rate-unreadable-create"),
        help: "Share of creates that make the export but answer 200 with a body no client can read (its id is lost).")
    var rateUnreadableCreate: Double = 0

    @Option(
        name: .customLong("rate-short-range"),
        help: "Share of resumed downloads whose 206 ends cleanly short of its Content-Range.")
    var rateShortRange: Double = 0

    @Option(name: .customLong("max-faults"), help: "Stop injecting faults after this many (default: no limit).")
    var maxFaults: Int?

    @Option(
        name: .customLong("html-polls"),
        help: ArgumentHelp("Answer the first N polls of an operation with 200 and an HTML page, as a proxy in front of the API would.", valueName: "n"))
    var htmlPolls = 0

    @Option(
        name: .customLong("reject-key-from"),
        help: ArgumentHelp("Answer 401 from this API call on (counted from 1, downloads aside), as if the key had been rotated.", valueName: "call"))
    var rejectKeyFrom: Int?

    @Option(
        name: .customLong("reject-key-count"),
        help: ArgumentHelp("How many API calls --reject-key-from rejects before the key works again.", valueName: "calls"))
    var rejectKeyCount = 1

    @Option(
        name: .customLong("cache-dir"),
        help: "Folder for generated export files (default: a temporary folder, removed on exit).")
    var cacheDirectory: String?

    @Option(
        name: .customLong("download-rate"),
        help: ArgumentHelp("Serve each download at this many bytes per second (K and M suffixes: 512K, 2M), to watch progress.", valueName: "bytes"),
        transform: { text in
            let units: [Character: Int] = ["K": 1024, "M": 1024 * 1024]
            let multiplier = text.last.flatMap { units[Character($0.uppercased())] } ?? 1
            guard let number = Int(multiplier == 1 ? text : String(text.dropLast())), number > 0 else {
                throw ValidationError("--download-rate \(text) is not a byte rate; write it like 65536, 512K or 2M.")
            }
            return number * multiplier
        })
    var downloadRate: Int?

    @Option(
        name: .customLong("log-level"),
        help: "Log level on stderr: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "warning"

    /// The emulator's clock: the system's, or one that read `--clock-start` when the
    /// configuration was made and runs on from there.
    var clock: @Sendable () -> Date {
        guard let start = clockStart.flatMap(Self.instant) else { return { Date() } }
        let offset = start.timeIntervalSince(Date())
        return { Date().addingTimeInterval(offset) }
    }

    static func instant(_ text: String) -> Date? {
        ISO8601DateFormatter().date(from: text)
    }

    func validate() throws {
        if let clockStart, Self.instant(clockStart) == nil {
            throw ValidationError("--clock-start \(clockStart) is not an instant; write it like 2026-11-27T02:00:00Z.")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical.")
        }
        if let problem = makeConfiguration().problem() {
            throw ValidationError(problem)
        }
    }

    func run() async throws {
        // SIGINT and SIGTERM shut it down gracefully (swift-service-lifecycle).
        let emulator = try await Emulator.start(makeConfiguration(), stopOnSignals: true)
        // Unbuffered, so a script reading the port sees the line at once.
        FileHandle.standardOutput.write(Data("listening on \(emulator.baseURL.absoluteString)\n".utf8))
        await emulator.waitUntilStopped()
    }

    private func makeConfiguration() -> EmulatorConfiguration {
        var logger = Logger(label: "segsync.emulator")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
        var configuration = EmulatorConfiguration(
            host: host,
            port: port,
            apiKey: apiKey,
            dialect: dialect.configurationValue,
            operationSeconds: operationSeconds,
            linkTTL: linkTTL,
            rowsPerHour: rowsPerHour,
            requestLogPath: requestLog,
            seed: seed,
            generatedSegments: generatedSegments,
            downloadHost: downloadHost,
            supportsRanges: !noRanges,
            rate429: rate429,
            retryAfterSeconds: Int(retryAfter) ?? 1,
            retryAfterValue: Int(retryAfter) == nil ? retryAfter : nil,
            createLatency: createLatency,
            rate5xx: rate5xx,
            serverErrorStatus: serverErrorStatus,
            rateReset: rateReset,
            rateDrop: rateDrop,
            rateTruncate: rateTruncate,
            rateFail: rateFail,
            rateExpiredLink: rateExpiredLink,
            rateUnreadableCreate: rateUnreadableCreate,
            rateShortRange: rateShortRange,
            maxFaults: maxFaults,
            htmlPolls: htmlPolls,
            rejectKeyFrom: rejectKeyFrom,
            rejectKeyCount: rejectKeyCount,
            cacheDirectory: cacheDirectory,
            downloadBytesPerSecond: downloadRate,
            lateRate: lateRate,
            lateSeconds: lateHours * 3600,
            now: clock,
            logger: logger
        )
        configuration.slowCreates = slowCreates
        configuration.faultsOn = faultsOn.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
        return configuration
    }

    /// Returns on SIGINT or SIGTERM, so the emulator can stop cleanly and remove its files.

    enum Dialect: String, ExpressibleByArgument, CaseIterable {
        case seed
        case fullstory

        var configurationValue: EmulatorConfiguration.Dialect {
            self == .seed ? .seed : .fullstory
        }
    }
}
