import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// The FullStory API emulator, running in this process.
///
/// ```swift
/// let emulator = try await Emulator.start(EmulatorConfiguration(dialect: .fullstory))
/// defer { Task { await emulator.stop() } }
/// // talk to emulator.baseURL
/// ```
///
/// It binds an ephemeral port by default and serves until ``stop()`` (or, when started
/// with `stopOnSignals`, until SIGTERM or SIGINT arrives): a Hummingbird application
/// under swift-service-lifecycle's `ServiceGroup`, which finishes the requests in flight
/// before it stops. Everything it hands
/// out (operation ids, links) is signed with a key made from the API key and seed, so a
/// new emulator with the same two answers for ids issued by an earlier one.
public final class Emulator: Sendable {
    public let configuration: EmulatorConfiguration
    /// The port it listens on (the real one when 0 was asked for).
    public let port: Int
    /// `http://<host>:<port>`, no trailing slash.
    public let baseURL: URL
    private let state: EmulatorState
    private let services: ServiceGroup
    private let server: Task<Void, any Error>

    /// Problems starting the emulator.
    public enum StartError: Error, CustomStringConvertible {
        case invalidConfiguration(String)
        case couldNotListen(host: String, port: Int, reason: String)

        public var description: String {
            switch self {
            case .invalidConfiguration(let problem):
                return problem
            case .couldNotListen(let host, let port, let reason):
                return "The emulator could not listen on \(host):\(port): \(reason)."
            }
        }
    }

    private init(configuration: EmulatorConfiguration, port: Int, state: EmulatorState, services: ServiceGroup,
                 server: Task<Void, any Error>) {
        self.configuration = configuration
        self.port = port
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        self.baseURL = URL(string: "http://\(host):\(port)")!
        self.state = state
        self.services = services
        self.server = server
    }

    /// Starts serving and returns once the port is bound. With `stopOnSignals` (for an
    /// emulator that is its own process) SIGTERM and SIGINT stop it as ``stop()`` does.
    public static func start(_ configuration: EmulatorConfiguration = EmulatorConfiguration(),
                             stopOnSignals: Bool = false) async throws -> Emulator
    {
        let gracefulShutdownSignals: [UnixSignal] = stopOnSignals ? [.sigterm, .sigint] : []
        if let problem = configuration.problem() {
            throw StartError.invalidConfiguration(problem)
        }
        let state = try EmulatorState(configuration)
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let application = Application(
            router: EmulatorRouter.router(state),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: nil
            ),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? configuration.port)
                portContinuation.finish()
            },
            logger: configuration.logger
        )
        let services = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: application)], gracefulShutdownSignals: gracefulShutdownSignals,
            logger: configuration.logger))
        let server = Task {
            defer { portContinuation.finish() }
            try await services.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            let reason: String
            switch await server.result {
            case .failure(let error): reason = "\(error)"
            case .success: reason = "the server stopped at once"
            }
            await state.store.removeAll()
            throw StartError.couldNotListen(host: configuration.host, port: configuration.port, reason: reason)
        }
        state.boundPort.current = port
        return Emulator(configuration: configuration, port: port, state: state, services: services, server: server)
    }

    /// Stops serving: no new connections, the requests in flight answered (those still
    /// running after `grace` are cut), then the generated files removed.
    public func stop(grace: Duration = .seconds(2)) async {
        await services.triggerGracefulShutdown()
        let server = self.server
        let deadline = Task {
            try await Task.sleep(for: grace)
            server.cancel()
        }
        await waitUntilStopped()
        deadline.cancel()
    }

    /// Waits until the emulator has stopped (a shutdown signal, or ``stop()``), then
    /// closes the request log and removes the generated files.
    public func waitUntilStopped() async {
        _ = await server.result
        await state.log.close()
        await state.store.removeAll()
    }
}
