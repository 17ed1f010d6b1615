import Foundation
import FullStoryAPI
import FullStoryContract
import Logging
import SegSync
import SegSyncEmulator

/// The API client a run uses: the real endpoint from the manifest and environment, or
/// the built-in emulator started inside this process for `endpoint: emulator`.
public struct APIConnection: Sendable {
    public let client: FullStoryClient
    public let emulator: Emulator?

    public init(client: FullStoryClient, emulator: Emulator?) {
        self.client = client
        self.emulator = emulator
    }

    /// Opens a connection for a manifest's `api` settings (their endpoint already the
    /// effective one) in a context; `tune` adjusts the client's configuration (timeouts,
    /// retries) for the command.
    public typealias Factory = @Sendable (_ api: APISettings, _ context: CommandContext,
                                          _ tune: (inout FullStoryClient.Configuration) -> Void) async throws -> APIConnection

    /// The key the built-in emulator accepts; it guards nothing but the emulator.
    static let emulatorKey = "emulator-key"

    /// The real endpoint from the manifest and the context's environment, or the built-in
    /// emulator: the ``Factory`` a context has unless it is given another.
    public static func open(api: APISettings, context: CommandContext,
                            tune: (inout FullStoryClient.Configuration) -> Void) async throws -> APIConnection {
        let environment = context.environment
        // The endpoint is already the effective one (APIEndpoint.effective).
        if api.endpoint == APISettings.emulatorEndpoint {
            let logger = context.logger("segsync.emulator", level: .critical)  // its shutdown chatter is not the user's concern
            let emulator = try await Emulator.start(EmulatorConfiguration(
                apiKey: emulatorKey,
                dialect: api.dialect == .fullstory ? .fullstory : .seed,
                operationSeconds: 1,
                rowsPerHour: 30,
                logger: logger))
            var configuration = FullStoryClient.Configuration(
                endpoint: emulator.baseURL, dialect: api.dialect, apiKey: APIKey(emulatorKey),
                keyEnvironmentVariable: api.keyEnv, rateLimit: api.rateLimit)
            configuration.logger = context.apiLogger
            tune(&configuration)
            return APIConnection(client: try FullStoryClient(configuration: configuration), emulator: emulator)
        }
        var configuration = FullStoryClient.Configuration(
            endpoint: try APIEndpoint.validate(api.endpoint),
            dialect: api.dialect,
            apiKey: try APIKey.fromEnvironment(api.keyEnv, environment: environment),
            keyEnvironmentVariable: api.keyEnv)
        configuration.rateLimit = api.rateLimit
        configuration.logger = context.apiLogger
        tune(&configuration)
        return APIConnection(client: try FullStoryClient(configuration: configuration), emulator: nil)
    }

    /// Runs `body` with a connection the context opens, and always closes it.
    static func with<T>(api: APISettings, context: CommandContext, tune: (inout FullStoryClient.Configuration) -> Void = { _ in },
                        _ body: (APIConnection) async throws -> T) async throws -> T {
        let connection = try await context.connect(api, context, tune)
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Shuts the client down and stops the built-in emulator, if one was started.
    public func close() async {
        try? await client.shutdown()
        await emulator?.stop()
    }
}
