import Foundation
import Hummingbird
import Logging
import NIOCore

/// The FullStory API emulator, running in this process.
///
/// ```swift
/// let emulator = try await Emulator.start(EmulatorConfiguration(dialect: .fullstory))
/// defer { Task { await emulator.stop() } }
/// // talk to emulator.baseURL
/// ```
///
/// It binds an ephemeral port by default and serves until ``stop()``. Everything it hands
/// out (operation ids, links) is signed with a key made from the API key and seed, so a
/// new emulator with the same two answers for ids issued by an earlier one.
public final class Emulator: Sendable {
    public let configuration: EmulatorConfiguration
    /// The port it listens on (the real one when 0 was asked for).
    public let port: Int
    /// `http://<host>:<port>`, no trailing slash.
    public let baseURL: URL
    private let state: EmulatorState
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

    private init(configuration: EmulatorConfiguration, port: Int, state: EmulatorState, server: Task<Void, any Error>) {
        self.configuration = configuration
        self.port = port
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        self.baseURL = URL(string: "http://\(host):\(port)")!
        self.state = state
        self.server = server
    }

    /// Starts serving and returns once the port is bound.
    public static func start(_ configuration: EmulatorConfiguration = EmulatorConfiguration()) async throws -> Emulator
    {
        if let problem = configuration.problem() {
            throw StartError.invalidConfiguration(problem)
        }
        let state = try EmulatorState(configuration)
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let application = Application(
            responder: EmulatorResponder(state: state),
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
        let server = Task {
            defer { portContinuation.finish() }
            try await application.run()
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
        return Emulator(configuration: configuration, port: port, state: state, server: server)
    }

    /// Stops serving (open connections are closed) and removes the generated files.
    public func stop() async {
        server.cancel()
        _ = await server.result
        await state.log.close()
        await state.store.removeAll()
    }
}
