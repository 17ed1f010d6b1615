import Foundation
import Logging

/// Every knob of the emulator, shared by the `segsync-emulator` executable (one flag
/// each) and the in-process ``Emulator``.
///
/// Rates are probabilities in `0...1`, drawn from a generator seeded with ``seed``, so a
/// run with the same settings and the same sequence of requests injects the same faults.
public struct EmulatorConfiguration: Sendable {
    /// The API flavour served; see `LIVE-API-NOTES.md` for the differences.
    public enum Dialect: String, Sendable, CaseIterable {
        case seed
        case fullstory
    }

    /// Address to bind. Keep the default: the emulator is for this machine only.
    public var host: String
    /// 0 picks a free port.
    public var port: Int
    /// The only key accepted in `Authorization: Basic <key>`.
    public var apiKey: String
    public var dialect: Dialect
    /// How long an export takes from PENDING to COMPLETED; 0 completes at once.
    public var operationSeconds: Double
    /// How long a download link stays valid.
    public var linkTTL: Double
    /// Rows per hour of an export's time range: the size knob for downloads.
    public var rowsPerHour: Int
    /// Where to append one JSON line per request; `nil` for none.
    public var requestLogPath: String?
    /// Seeds the fault draws and the signing key (with the API key).
    public var seed: UInt64
    /// Number of segments besides the built-in ones, so pagination has pages to turn.
    public var generatedSegments: Int
    /// Host name written into download links; defaults to ``host``. Setting `localhost`
    /// while binding 127.0.0.1 makes links look like they live on another host, as
    /// production's signed links do.
    public var downloadHost: String?
    /// Whether downloads honour `Range` and say `Accept-Ranges: bytes`. Off, a client
    /// cannot resume and must start a dropped download over.
    public var supportsRanges: Bool

    /// API calls answered 429 with `Retry-After: retryAfterSeconds`.
    public var rate429: Double
    public var retryAfterSeconds: Int
    /// Sent verbatim as `Retry-After` instead of ``retryAfterSeconds`` when set: a
    /// hostile or malformed value, for testing clients.
    public var retryAfterValue: String?
    /// Seconds a create export waits before answering, with the export already made: a
    /// client cancelled in that time must still wait for (and keep) the id.
    public var createLatency: Double
    /// Only the first this many creates wait ``createLatency``; nil: every one.
    public var slowCreates: Int? = nil
    /// The endpoint kinds (as the request log names them: `createExport`, …) that 429,
    /// 5xx and reset faults may hit; nil: every API call.
    public var faultsOn: Set<String>? = nil
    /// API calls answered with ``serverErrorStatus`` (503 also carries `Retry-After`).
    public var rate5xx: Double
    public var serverErrorStatus: Int
    /// API calls read in full and then left unanswered: the connection is closed. A
    /// create export that hits this was accepted, but its id is lost.
    public var rateReset: Double
    /// Downloads whose connection is dropped part-way; a resumed (Range) request is never
    /// dropped, so a client that resumes always finishes.
    public var rateDrop: Double
    /// Downloads that promise the full `Content-Length` but close early, resumed or not.
    public var rateTruncate: Double
    /// Exports that end FAILED instead of COMPLETED.
    public var rateFail: Double
    /// Download links handed out already expired.
    public var rateExpiredLink: Double
    /// Creates that make the export but answer `200` with a body no client can read (a
    /// truncated JSON document): the export exists, its id is lost.
    public var rateUnreadableCreate: Double
    /// Resumed downloads (`Range` requests) whose `206` ends cleanly short of what its
    /// `Content-Range` promises: a well-framed response that holds fewer bytes.
    public var rateShortRange: Double
    /// At most this many faults in total, then none; `nil` for no limit. With a rate of 1
    /// this gives "the first N calls fail, then all succeed".
    public var maxFaults: Int?
    /// The first this many polls (`GET /operations/v1/{id}`) are answered `200` with an
    /// HTML page, as a proxy or captive portal in front of the API would.
    public var htmlPolls: Int
    /// API calls (counted from 1, downloads aside) from which the key is rejected with
    /// 401, for ``rejectKeyCount`` calls: a key rotated mid-run, then fixed.
    public var rejectKeyFrom: Int?
    public var rejectKeyCount: Int

    /// Where generated export files are cached; a fresh temporary folder when `nil`.
    public var cacheDirectory: String?
    /// Bytes per second each download is served at (a slow link); `nil` for as fast as it goes.
    public var downloadBytesPerSecond: Int?
    /// Late data: the fraction of rows that arrive after their time, each late by up to
    /// ``lateSeconds`` (drawn per row from the row's position, so deterministic). An
    /// export created before `end + lateSeconds` lacks the rows still to arrive; one
    /// created later has them all. 0: every row is there when its range ends.
    public var lateRate: Double
    public var lateSeconds: Double
    /// The emulator's clock: when exports are created and finish, and when links expire.
    /// The system clock by default; a test may hold it and move it by hand, so an
    /// export's progress depends on the steps it takes, not on how busy the machine is.
    public var now: @Sendable () -> Date
    public var logger: Logger

    public init(
        host: String = "127.0.0.1",
        port: Int = 0,
        apiKey: String = "emulator-key",
        dialect: Dialect = .seed,
        operationSeconds: Double = 2,
        linkTTL: Double = 300,
        rowsPerHour: Int = 60,
        requestLogPath: String? = nil,
        seed: UInt64 = 0,
        generatedSegments: Int = 250,
        downloadHost: String? = nil,
        supportsRanges: Bool = true,
        rate429: Double = 0,
        retryAfterSeconds: Int = 1,
        retryAfterValue: String? = nil,
        createLatency: Double = 0,
        rate5xx: Double = 0,
        serverErrorStatus: Int = 500,
        rateReset: Double = 0,
        rateDrop: Double = 0,
        rateTruncate: Double = 0,
        rateFail: Double = 0,
        rateExpiredLink: Double = 0,
        rateUnreadableCreate: Double = 0,
        rateShortRange: Double = 0,
        maxFaults: Int? = nil,
        htmlPolls: Int = 0,
        rejectKeyFrom: Int? = nil,
        rejectKeyCount: Int = 0,
        cacheDirectory: String? = nil,
        downloadBytesPerSecond: Int? = nil,
        lateRate: Double = 0,
        lateSeconds: Double = 0,
        now: @escaping @Sendable () -> Date = { Date() },
        logger: Logger = Logger(label: "segsync.emulator")
    ) {
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.dialect = dialect
        self.operationSeconds = operationSeconds
        self.linkTTL = linkTTL
        self.rowsPerHour = rowsPerHour
        self.requestLogPath = requestLogPath
        self.seed = seed
        self.generatedSegments = generatedSegments
        self.downloadHost = downloadHost
        self.supportsRanges = supportsRanges
        self.rate429 = rate429
        self.retryAfterSeconds = retryAfterSeconds
        self.retryAfterValue = retryAfterValue
        self.createLatency = createLatency
        self.rate5xx = rate5xx
        self.serverErrorStatus = serverErrorStatus
        self.rateReset = rateReset
        self.rateDrop = rateDrop
        self.rateTruncate = rateTruncate
        self.rateFail = rateFail
        self.rateExpiredLink = rateExpiredLink
        self.rateUnreadableCreate = rateUnreadableCreate
        self.rateShortRange = rateShortRange
        self.maxFaults = maxFaults
        self.htmlPolls = htmlPolls
        self.rejectKeyFrom = rejectKeyFrom
        self.rejectKeyCount = rejectKeyCount
        self.cacheDirectory = cacheDirectory
        self.downloadBytesPerSecond = downloadBytesPerSecond
        self.lateRate = lateRate
        self.lateSeconds = lateSeconds
        self.now = now
        self.logger = logger
    }

    /// A sentence for the first setting that cannot work, or `nil` when all are fine.
    public func problem() -> String? {
        let rates: [(String, Double)] = [
            ("rate-429", rate429), ("rate-5xx", rate5xx), ("rate-reset", rateReset), ("rate-drop", rateDrop),
            ("rate-truncate", rateTruncate), ("rate-fail", rateFail), ("rate-expired-link", rateExpiredLink),
            ("rate-unreadable-create", rateUnreadableCreate), ("rate-short-range", rateShortRange), ("late-rate", lateRate),
        ]
        for (name, rate) in rates where !(0...1).contains(rate) || rate.isNaN {
            return "--\(name) must be between 0 and 1, not \(rate)."
        }
        if !(0...65535).contains(port) { return "--port must be between 0 and 65535, not \(port)." }
        if apiKey.isEmpty { return "--api-key must not be empty." }
        if !(operationSeconds >= 0) || !operationSeconds.isFinite { return "--operation-seconds must be 0 or more." }
        if !(lateSeconds >= 0) || !lateSeconds.isFinite { return "--late-hours must be 0 or more." }
        if !(linkTTL >= 0) || !linkTTL.isFinite { return "--link-ttl must be 0 or more." }
        if rowsPerHour < 0 { return "--rows-per-hour must be 0 or more." }
        if retryAfterSeconds < 0 { return "--retry-after must be 0 or more." }
        if retryAfterValue?.contains(where: { $0 == "\r" || $0 == "\n" }) == true { return "--retry-after must be one line." }
        if !(createLatency >= 0) || !createLatency.isFinite { return "--create-latency must be 0 or more." }
        if !(500...599).contains(serverErrorStatus) {
            return "--server-error-status must be a 5xx status, not \(serverErrorStatus)."
        }
        if let maxFaults, maxFaults < 0 { return "--max-faults must be 0 or more." }
        if htmlPolls < 0 { return "--html-polls must be 0 or more." }
        if let slowCreates, slowCreates < 0 { return "--slow-creates must be 0 or more." }
        if let unknown = faultsOn?.subtracting(EmulatorRouter.api.map(\.kind)).sorted().first {
            return "--faults-on: no API endpoint is called '\(unknown)'; use \(EmulatorRouter.api.map(\.kind).joined(separator: ", "))."
        }
        if let rejectKeyFrom, rejectKeyFrom < 1 { return "--reject-key-from counts API calls from 1, not \(rejectKeyFrom)." }
        if rejectKeyCount < 0 { return "--reject-key-count must be 0 or more." }
        if let downloadBytesPerSecond, downloadBytesPerSecond < 1024 { return "--download-rate must be at least 1024 bytes per second." }
        if generatedSegments < 0 { return "--segments must be 0 or more." }
        return nil
    }
}
