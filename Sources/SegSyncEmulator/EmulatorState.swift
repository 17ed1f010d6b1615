import Foundation
import Hummingbird
import Logging
import NIOCore

/// The request context: Hummingbird's basics plus the connection, which the emulator
/// closes on purpose to inject resets and dropped downloads.
struct EmulatorContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
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
    let boundPort: LockedValue<Int>

    init(_ configuration: EmulatorConfiguration) throws {
        self.configuration = configuration
        catalog = SegmentCatalog(generated: configuration.generatedSegments)
        signer = Signer(apiKey: configuration.apiKey, seed: configuration.seed)
        faults = FaultInjector(configuration)
        log = try RequestLog(path: configuration.requestLogPath)
        store = try ExportStore(directory: configuration.cacheDirectory, rowsPerHour: configuration.rowsPerHour)
        boundPort = LockedValue(configuration.port)
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
