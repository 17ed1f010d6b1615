import Foundation
import Hummingbird
import Logging
import NIOCore

/// The request context: Hummingbird's basics plus the connection, which the emulator
/// closes on purpose to inject resets and dropped downloads.
struct EmulatorContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel
    /// What the request log says about this request beyond its status, filled in as it
    /// is answered (a context is copied down the middleware chain; this is shared).
    let exchange = Exchange()

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// One request's notes for the request log: an injected fault, the range asked for.
final class Exchange: @unchecked Sendable {
    private let lock = NSLock()
    private var _fault: String?
    private var _range: String?

    var fault: String? {
        get { lock.withLock { _fault } }
        set { lock.withLock { _fault = newValue } }
    }

    var range: String? {
        get { lock.withLock { _range } }
        set { lock.withLock { _range = newValue } }
    }

    private var _operation: String?

    /// The operation id a create answered with.
    var operation: String? {
        get { lock.withLock { _operation } }
        set { lock.withLock { _operation = newValue } }
    }
}

/// Thrown from a download body to cut the connection part-way.
struct InjectedDisconnect: Error {}

/// Shared by every request of one emulator.
final class EmulatorState: Sendable {
    let configuration: EmulatorConfiguration
    let catalog: SegmentCatalog
    let signer: Signer
    let faults: FaultInjector
    let log: RequestLog
    let store: ExportStore
    let operations = OperationRegistry()
    let boundPort: LockedValue<Int>

    init(_ configuration: EmulatorConfiguration) throws {
        self.configuration = configuration
        catalog = SegmentCatalog(generated: configuration.generatedSegments)
        signer = Signer(apiKey: configuration.apiKey, seed: configuration.seed)
        faults = FaultInjector(configuration)
        log = try RequestLog(path: configuration.requestLogPath)
        store = try ExportStore(directory: configuration.cacheDirectory, rowsPerHour: configuration.rowsPerHour,
                                late: SyntheticExport.Late(rate: configuration.lateRate, seconds: configuration.lateSeconds, seed: configuration.seed))
        boundPort = LockedValue(configuration.port)
    }
}

extension EmulatorState {
    /// Appends one request to the request log (its path without the query).
    func record(_ request: Request, kind: String, status: Int, fault: String?, range: String? = nil, operation: String? = nil) async {
        await log.record(.init(
            time: WireTime.format(Date()), method: request.method.rawValue, path: request.uri.path, status: status,
            kind: kind, fault: fault, range: range, auth: request.headers[.authorization] != nil, operation: operation))
    }
}

/// A value behind a lock, for the one piece of state set after start (the bound port).
final class LockedValue<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    var current: Value {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

/// Everything an operation id carries, so any emulator process with the same key and
/// seed can answer for it without shared storage.
struct OperationTicket: Codable, Sendable {
    var spec: ExportSpec
    /// Unix milliseconds.
    var created: Int64
    var durationMilliseconds: Int64
    var fails: Bool
    var nonce: UInt64

    enum CodingKeys: String, CodingKey {
        case spec = "x", created = "c", durationMilliseconds = "d", fails = "f", nonce = "n"
    }
}

/// A production-dialect `searchExportId`: the export and when it finished.
struct SearchExportTicket: Codable, Sendable {
    var spec: ExportSpec
    var finished: Int64

    enum CodingKeys: String, CodingKey {
        case spec = "x", finished = "t"
    }
}
