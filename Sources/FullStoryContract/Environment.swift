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

/// The one place that parses, checks and classifies endpoints: the manifest's
/// `api.endpoint`, `FULLSTORY_API_URL`, the client's configuration and every download link.
public enum APIEndpoint {
    /// FullStory's production API.
    public static let production = URL(string: "https://api.fullstory.com")!

    /// The variable that overrides any configured endpoint, e.g. to point a run at the emulator.
    public static let environmentVariable = "FULLSTORY_API_URL"

    /// The word that names the built-in emulator wherever an endpoint is given.
    public static let emulator = "emulator"

    /// What a URL is used for, which decides what it may carry.
    public enum Use: Sendable {
        /// The API itself: no credentials and no query string in the URL.
        case api
        /// A signed download link: its signature is in the query string.
        case downloadLink
    }

    /// The endpoint a run talks to — the one rule every command follows: `flag`
    /// (`--endpoint`) when given, else `FULLSTORY_API_URL` when set, else `configured` (the
    /// manifest's `api.endpoint`), else production. ``emulator`` from any of them means the
    /// built-in emulator and is returned as it is; anything else is checked
    /// (``validate(_:source:use:)``) and returned as its ``origin(_:)``, the data source
    /// outputs record.
    public static func effective(flag: String? = nil, environment: [String: String], configured: String? = nil)
        throws(FullStoryAPIError) -> String
    {
        let candidates = [(flag, "--endpoint"), (environment[environmentVariable], environmentVariable), (configured, "the configured endpoint")]
        for (given, source) in candidates {
            guard let text = given?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { continue }
            if text == emulator { return emulator }
            _ = try validate(text, source: source)
            return origin(text)
        }
        return origin(production.absoluteString)
    }

    /// ``effective(flag:environment:configured:)`` as a URL a client can call; the built-in
    /// emulator has none until segsync starts it, so it is refused here.
    public static func resolve(
        configured: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(FullStoryAPIError) -> URL {
        let endpoint = try effective(environment: environment, configured: configured)
        guard endpoint != emulator else {
            throw .invalidEndpoint("The built-in emulator ('\(emulator)') is started by segsync's commands; a client needs a URL.")
        }
        return URL(string: endpoint)!
    }

    /// Why `text` cannot be used as `use`, as a phrase that follows the URL in a sentence
    /// ("uses plain http:// to a host that is not this machine; …"), or nil when it can.
    public static func problem(with text: String, use: Use = .api) -> String? {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty, URL(string: text) != nil
        else {
            return "is not an absolute URL such as https://api.fullstory.com"
        }
        if use == .api, components.user != nil || components.password != nil {
            return "carries credentials; the API key comes from the environment, never from the URL"
        }
        if use == .api, components.query != nil || components.fragment != nil {
            return "carries a query string or fragment; give just the scheme, host and port"
        }
        switch scheme {
        case "https":
            return nil
        case "http" where isLoopback(host):
            return nil
        case "http":
            return "uses plain http:// to a host that is not this machine, so the API key would travel unencrypted; "
                + "use https://, or http:// only with localhost, 127.0.0.1 or [::1]"
        default:
            return "must start with https:// (or http:// for localhost)"
        }
    }

    /// Checks `text` with ``problem(with:use:)``; the error names `source` and shows the
    /// URL redacted.
    public static func validate(_ text: String, source: String = "the endpoint", use: Use = .api)
        throws(FullStoryAPIError) -> URL
    {
        if let problem = problem(with: text, use: use) {
            let source = source.prefix(1).uppercased() + source.dropFirst()
            throw .invalidEndpoint("\(source) '\(redacted(text))' \(problem).")
        }
        return URL(string: text)!
    }

    /// `localhost` (and `*.localhost`), `127.0.0.0/8` written as four decimal octets, and
    /// `::1`. Nothing that merely starts like one: `127.evil.com` is a host on the internet.
    public static func isLoopback(_ host: String) -> Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        if bare == "localhost" || bare.hasSuffix(".localhost") || bare == "::1" { return true }
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127"
            && octets.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCII) && UInt8($0) != nil }
    }

    /// The data source an endpoint names, as recorded with every output:
    /// `https://api.fullstory.com`, `http://127.0.0.1:8080`. Scheme and host in lower case,
    /// the default port and a trailing slash dropped, so spellings of one endpoint agree.
    public static func origin(_ text: String) -> String {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let host = components.host?.lowercased(), !host.isEmpty
        else { return text }
        let defaultPort = scheme == "https" ? 443 : scheme == "http" ? 80 : nil
        let port = components.port.flatMap { $0 == defaultPort ? nil : ":\($0)" } ?? ""
        let shownHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        return "\(scheme)://\(shownHost)\(port)\(path)"
    }
}
