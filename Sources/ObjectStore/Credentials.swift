import AsyncHTTPClient
import Foundation
import NIOCore
import SegSyncVocabulary

/// An access key, with the session token that temporary credentials carry.
///
/// `source` says where it came from in words a user can check ("the environment
/// (AWS_ACCESS_KEY_ID)", "profile 'ci' in /home/me/.aws/credentials"); the description
/// never shows the secret or the token.
public struct Credentials: Sendable, Hashable, CustomStringConvertible {
    public var accessKeyId: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// When temporary credentials stop working; nil for long-lived keys.
    public var expiration: Date?
    public var source: String

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil, source: String) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
        self.source = source
    }

    public var description: String { "access key \(accessKeyId) from \(source)" }
}

/// Finds credentials in the standard AWS places, in order, and keeps them (refreshing
/// temporary ones five minutes before they expire):
///
/// 1. `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`;
/// 2. a web identity: `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE` (and
///    `AWS_ROLE_SESSION_NAME`), exchanged through STS `AssumeRoleWithWebIdentity`;
/// 3. the profile `AWS_PROFILE` (else `default`) in the shared credentials file
///    (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`), then in the config file
///    (`AWS_CONFIG_FILE`, else `~/.aws/config`).
///
/// The environment is passed in, never read from the process, so tests control it.
public actor CredentialChain {
    private let environment: [String: String]
    private let httpClient: HTTPClient?
    private var cached: Credentials?
    private var refreshing: Task<Credentials, any Error>?

    /// A chain over `environment`; `httpClient` is needed only for web identity.
    public init(environment: [String: String], httpClient: HTTPClient?) {
        self.environment = environment
        self.httpClient = httpClient
    }

    /// A chain that always answers `credentials`.
    public init(fixed credentials: Credentials) {
        self.environment = [:]
        self.httpClient = nil
        self.cached = credentials
    }

    /// The credentials to sign with now.
    public func credentials(now: Date = Date()) async throws -> Credentials {
        if let cached, cached.expiration.map({ $0.timeIntervalSince(now) > 300 }) ?? true {
            return cached
        }
        // Parts uploading at once ask together: one look (one STS call) answers them all.
        if let refreshing { return try await refreshing.value }
        let task = Task { try await self.resolve() }
        refreshing = task
        defer { refreshing = nil }
        let found = try await task.value
        cached = found
        return found
    }

    private func resolve() async throws -> Credentials {
        var looked: [String] = []
        let env = { (name: String) -> String? in
            guard let value = self.environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            return value
        }

        switch (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        case let (id?, secret?):
            return Credentials(accessKeyId: id, secretAccessKey: secret, sessionToken: env("AWS_SESSION_TOKEN"), source: "the environment (AWS_ACCESS_KEY_ID)")
        case (_?, nil):
            throw ObjectStoreError.incompleteCredentials("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both, or neither to use another source.")
        case (nil, _?):
            throw ObjectStoreError.incompleteCredentials("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both, or neither to use another source.")
        case (nil, nil):
            looked.append("the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (not set)")
        }

        switch (env("AWS_ROLE_ARN"), env("AWS_WEB_IDENTITY_TOKEN_FILE")) {
        case let (role?, tokenFile?):
            return try await WebIdentity(environment: environment, roleArn: role, tokenFile: tokenFile).assumeRole(httpClient: httpClient)
        case (_?, nil), (nil, _?):
            throw ObjectStoreError.incompleteCredentials("A web identity needs both AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, and only one is set.")
        case (nil, nil):
            looked.append("a web identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, not set)")
        }

        let files = SharedConfigFiles(environment: environment)
        let profile = files.profile
        for (path, section) in [(files.credentialsPath, profile), (files.configPath, files.configSection)] {
            guard let path else { continue }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                looked.append("\(path) (not readable)")
                continue
            }
            guard let values = SharedConfigFiles.section(section, in: text) else {
                looked.append("\(path) (no profile '\(profile)')")
                continue
            }
            let source = "profile '\(profile)' in \(path)"
            switch (values["aws_access_key_id"], values["aws_secret_access_key"]) {
            case let (id?, secret?):
                return Credentials(accessKeyId: id, secretAccessKey: secret, sessionToken: values["aws_session_token"], source: source)
            case (nil, nil):
                looked.append("\(path) (profile '\(profile)' has no aws_access_key_id)")
            default:
                throw ObjectStoreError.incompleteCredentials("The \(source) needs both aws_access_key_id and aws_secret_access_key, and only one is set.")
            }
        }
        if files.credentialsPath == nil {
            looked.append("the shared credentials file (neither AWS_SHARED_CREDENTIALS_FILE nor HOME is set)")
        }
        throw ObjectStoreError.noCredentials(looked: looked)
    }
}

/// The shared credentials and config files, and the profile to read in them.
struct SharedConfigFiles {
    var profile: String
    var credentialsPath: String?
    var configPath: String?

    init(environment: [String: String]) {
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 }
        profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        credentialsPath = environment["AWS_SHARED_CREDENTIALS_FILE"].flatMap { $0.isEmpty ? nil : $0 } ?? home.map { $0 + "/.aws/credentials" }
        configPath = environment["AWS_CONFIG_FILE"].flatMap { $0.isEmpty ? nil : $0 } ?? home.map { $0 + "/.aws/config" }
    }

    /// The config file names profiles `[profile name]`, except `[default]`.
    var configSection: String { profile == "default" ? "default" : "profile \(profile)" }

    /// The region of the profile in the config file, if it names one.
    var region: String? {
        guard let configPath, let text = try? String(contentsOfFile: configPath, encoding: .utf8) else { return nil }
        return Self.section(configSection, in: text)?["region"]
    }

    /// The `key = value` lines of `[name]` in an INI text, or nil without that section.
    /// Comments start with `#` or `;`; keys are lowercased, values trimmed.
    static func section(_ name: String, in text: String) -> [String: String]? {
        var values: [String: String]?
        var inSection = false
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                let header = line.dropFirst().dropLast().split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
                inSection = header == name
                if inSection, values == nil { values = [:] }
                continue
            }
            guard inSection, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            values?[key] = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
        return values
    }
}

/// The region to use when none is given: `AWS_REGION`, `AWS_DEFAULT_REGION`, then the
/// profile's `region` in the config file.
public func defaultRegion(environment: [String: String]) -> String? {
    for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if let value = environment[name], !value.isEmpty { return value }
    }
    return SharedConfigFiles(environment: environment).region
}

/// `AssumeRoleWithWebIdentity`: an unsigned call to STS carrying the token from a file.
struct WebIdentity {
    var environment: [String: String]
    var roleArn: String
    var tokenFile: String

    /// `AWS_ENDPOINT_URL_STS` (or `AWS_STS_ENDPOINT`), else the regional STS endpoint,
    /// else the global one.
    var endpoint: String {
        for name in ["AWS_ENDPOINT_URL_STS", "AWS_STS_ENDPOINT"] {
            if let value = environment[name], !value.isEmpty { return value }
        }
        if let region = defaultRegion(environment: environment) { return "https://sts.\(region).amazonaws.com" }
        return "https://sts.amazonaws.com"
    }

    func assumeRole(httpClient: HTTPClient?) async throws -> Credentials {
        guard let httpClient else {
            throw ObjectStoreError.webIdentity("a web identity is configured (AWS_ROLE_ARN) but this chain has no HTTP client to reach STS.")
        }
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty else {
            throw ObjectStoreError.webIdentity("the token file \(tokenFile) (AWS_WEB_IDENTITY_TOKEN_FILE) cannot be read or is empty.")
        }
        let endpoint = try Endpoint(endpoint)
        let sessionName = environment["AWS_ROLE_SESSION_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? "segsync-\(Int(Date().timeIntervalSince1970))"
        let form = PercentEncoding.query([
            ("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"),
            ("RoleArn", roleArn), ("RoleSessionName", sessionName), ("WebIdentityToken", token),
        ])
        var request = HTTPClientRequest(url: endpoint.url(path: "/"))
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/x-www-form-urlencoded; charset=utf-8")
        request.body = .bytes(ByteBuffer(string: form))
        let (status, body): (UInt, ByteBuffer)
        do {
            let response = try await httpClient.execute(request, timeout: .seconds(30))
            status = response.status.code
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw ObjectStoreError.webIdentity("STS at \(endpoint.display) could not be reached: \(error).")
        }
        let xml = XMLTree.parse(Array(buffer: body))
        guard status == 200, let credentials = xml?.first("AssumeRoleWithWebIdentityResult")?.first("Credentials"),
            let id = credentials.text("AccessKeyId"), let secret = credentials.text("SecretAccessKey")
        else {
            let code = xml?.first("Error")?.text("Code") ?? "HTTP \(status)"
            let message = xml?.first("Error")?.text("Message").map { ": \($0)" } ?? ""
            throw ObjectStoreError.webIdentity("STS refused to assume role \(roleArn) with the token in \(tokenFile) (\(code)\(message)).")
        }
        return Credentials(
            accessKeyId: id, secretAccessKey: secret, sessionToken: credentials.text("SessionToken"),
            expiration: credentials.text("Expiration").flatMap(Timestamp.parse),
            source: "web identity role \(roleArn) (AWS_ROLE_ARN)")
    }
}
