import Foundation
import FullStoryAPI
import Logging
import SegSync
import SegSyncEmulator

/// The API client a run uses: the real endpoint from the manifest and environment, or
/// the built-in emulator started inside this process for `endpoint: emulator`.
struct APIConnection {
    let client: FullStoryClient
    let emulator: Emulator?

    /// The key the built-in emulator accepts; it guards nothing but the emulator.
    static let emulatorKey = "emulator-key"

    /// `tune` adjusts the client's configuration (timeouts, retries) for the command.
    static func open(manifest: Manifest, layout: Layout, environment: [String: String] = ProcessInfo.processInfo.environment,
                     tune: (inout FullStoryClient.Configuration) -> Void = { _ in }) async throws -> APIConnection {
        // The manifest's endpoint is already the effective one (Manifest.resolvingEndpoint).
        if manifest.api.endpoint == APISettings.emulatorEndpoint {
            var logger = Logger(label: "segsync.emulator")
            logger.logLevel = .critical  // its shutdown chatter is not the user's concern
            let emulator = try await Emulator.start(EmulatorConfiguration(
                apiKey: emulatorKey,
                dialect: manifest.api.dialect == .fullstory ? .fullstory : .seed,
                operationSeconds: 1,
                rowsPerHour: 30,
                logger: logger))
            var configuration = FullStoryClient.Configuration(
                endpoint: emulator.baseURL, dialect: manifest.api.dialect, apiKey: APIKey(emulatorKey),
                keyEnvironmentVariable: manifest.api.keyEnv, rateLimit: manifest.api.rateLimit)
            configuration.logger = quietLogger()
            tune(&configuration)
            return APIConnection(client: try FullStoryClient(configuration: configuration), emulator: emulator)
        }
        var configuration = FullStoryClient.Configuration(
            endpoint: try APIEndpoint.validate(manifest.api.endpoint),
            dialect: manifest.api.dialect,
            apiKey: try APIKey.fromEnvironment(manifest.api.keyEnv, environment: environment),
            keyEnvironmentVariable: manifest.api.keyEnv)
        configuration.rateLimit = manifest.api.rateLimit
        configuration.logger = quietLogger()
        tune(&configuration)
        return APIConnection(client: try FullStoryClient(configuration: configuration), emulator: nil)
    }

    static func quietLogger() -> Logger {
        var logger = Logger(label: "segsync.api")
        logger.logLevel = Output.current.verbosity == .verbose ? .debug : .error
        return logger
    }

    /// Runs `body` with a connection and always closes it.
    static func with<T>(manifest: Manifest, layout: Layout, tune: (inout FullStoryClient.Configuration) -> Void = { _ in },
                        _ body: (APIConnection) async throws -> T) async throws -> T {
        let connection = try await open(manifest: manifest, layout: layout, tune: tune)
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    func close() async {
        try? await client.shutdown()
        await emulator?.stop()
    }
}
