import Foundation

/// A FullStory API key. Its description never shows the key itself.
public struct APIKey: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The key exactly as FullStory issued it; sent as-is after `Basic `.
    public let secret: String

    public init(_ secret: String) {
        self.secret = secret
    }

    public var description: String { "<API key redacted>" }
    public var debugDescription: String { description }

    /// The variable that holds the key unless the manifest names another (`api.keyEnv`).
    public static let defaultEnvironmentVariable = "FULLSTORY_API_KEY"

    /// Reads the key from `variable`; surrounding whitespace (a pasted newline) is dropped.
    public static func fromEnvironment(
        _ variable: String = defaultEnvironmentVariable,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(FullStoryAPIError) -> APIKey {
        let value = environment[variable]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard !value.isEmpty else { throw .missingAPIKey(keyEnvironmentVariable: variable) }
        return APIKey(value)
    }
}

/// Where the API lives.
public enum APIEndpoint {
    /// FullStory's production API.
    public static let production = URL(string: "https://api.fullstory.com")!

    /// The variable that overrides any configured endpoint, e.g. to point a run at the emulator.
    public static let environmentVariable = "FULLSTORY_API_URL"

    /// The endpoint to use: `FULLSTORY_API_URL` if set, else `configured`, else production.
    /// Refuses anything but `https://`, except plain `http://` to a loopback host.
    public static func resolve(
        configured: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(FullStoryAPIError) -> URL {
        let fromEnvironment = environment[environmentVariable]?.trimmingCharacters(in: .whitespaces)
        let text = [fromEnvironment, configured?.trimmingCharacters(in: .whitespaces)]
            .compactMap { $0 }
            .first { !$0.isEmpty }
        guard let text else { return production }
        let source = (fromEnvironment?.isEmpty == false) ? environmentVariable : "the configured endpoint"
        return try validate(text, source: source)
    }

    /// Checks that `text` is an absolute http(s) URL and that plain HTTP only goes to loopback.
    public static func validate(_ text: String, source: String = "the endpoint") throws(FullStoryAPIError) -> URL {
        let source = source.prefix(1).uppercased() + source.dropFirst()
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty
        else {
            throw .invalidEndpoint(
                "\(source) '\(redacted(text))' is not an absolute URL such as https://api.fullstory.com.")
        }
        switch scheme {
        case "https":
            return url
        case "http":
            guard isLoopback(host) else {
                throw .invalidEndpoint(
                    "\(source) '\(redacted(url))' uses plain http:// to a host that is not this machine; "
                        + "the API key would travel unencrypted. Use https://, or http:// only with localhost or 127.0.0.1."
                )
            }
            return url
        default:
            throw .invalidEndpoint("\(source) '\(redacted(url))' must start with https:// (or http:// for localhost).")
        }
    }

    /// `localhost`, `127.0.0.0/8` and `::1`.
    public static func isLoopback(_ host: String) -> Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        if bare == "localhost" || bare.hasSuffix(".localhost") || bare == "::1" { return true }
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}
