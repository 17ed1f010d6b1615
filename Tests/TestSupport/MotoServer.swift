import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

import ObjectStore

/// A real moto server (S3, STS and IAM on one port) that checks SigV4 signatures, shared
/// by every test in the process.
///
/// moto checks signatures only for access keys its IAM knows, and only after the first
/// `INITIAL_NO_AUTH_ACTION_COUNT` requests (moto's "IAM-like access control" docs: the
/// unauthenticated requests are there to create a user with access keys first). So the
/// server starts with a count of 3 and the first three requests create the user
/// `segsync-admin`, its access key and an allow-all policy; from then on every request
/// must be signed with a key IAM knows, with the right secret.
/// The command is `SEGSYNC_TEST_MOTO`, else the venv `.ci/run` makes
/// (`.build-ci-venv/bin/moto_server`), else `moto_server` on PATH. Without one the tests
/// skip with a printed reason, except under `CI=true`, where that is a failure.
public final class MotoServer: Sendable {
    public let endpoint: String
    /// The admin user's key: allowed everything.
    public let admin: Credentials
    /// The moto process: kept here, as it stops when this is released.
    private let server: HelperServer

    private init(endpoint: String, admin: Credentials, server: HelperServer) {
        self.endpoint = endpoint
        self.admin = admin
        self.server = server
    }

    private static let started = Task<MotoServer?, any Error> { try await start(checkingSignatures: true) }
    private static let startedOpen = Task<MotoServer?, any Error> { try await start(checkingSignatures: false) }

    /// The shared server, or nil after saying why the test does not run.
    ///
    /// `checkingSignatures: false` gives a second server that checks nothing, for web
    /// identity: moto's STS fails `AssumeRoleWithWebIdentity` (an unsigned call in AWS)
    /// with a 500 once signatures are checked, as it looks for an `Authorization` header.
    public static func shared(_ test: String, checkingSignatures: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) async throws -> MotoServer? {
        if let server = try await (checkingSignatures ? started : startedOpen).value { return server }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            Issue.record("moto_server was not found under CI=true: the S3 tests must run (.ci/run installs it and sets SEGSYNC_TEST_MOTO).", sourceLocation: sourceLocation)
        } else {
            print("skipped (moto): \(test): install moto[server] (pip install 'moto[server]') or set SEGSYNC_TEST_MOTO")
        }
        return nil
    }

    static func command() -> String? {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["SEGSYNC_TEST_MOTO"], !path.isEmpty { return path }
        // The venv .ci/run makes holds the version CI pins (5.2.1 mis-verifies a signed
        // query holding an encoded '/'), so it wins over one on PATH.
        let venv = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build-ci-venv/bin/moto_server").path
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        for folder in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(folder)/moto_server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    private static func start(checkingSignatures: Bool) async throws -> MotoServer? {
        guard let command = command() else { return nil }
        for _ in 1...3 {
            let port = try freePort()
            var environment = ProcessInfo.processInfo.environment
            environment["INITIAL_NO_AUTH_ACTION_COUNT"] = checkingSignatures ? "3" : nil
            // moto_server ignores SIGTERM; the helper's watchdog SIGKILLs it, and it dies
            // with the test process however that ends.
            let server = try HelperServer([command, "-H", "127.0.0.1", "-p", String(port)], environment: environment)
            let endpoint = "http://127.0.0.1:\(port)"
            guard await waitUntilListening(port: port, while: server) else {
                server.stop()
                continue
            }
            let admin = try await bootstrapAdmin(endpoint: endpoint)
            return MotoServer(endpoint: endpoint, admin: admin, server: server)
        }
        throw MotoFailure("moto_server (\(command)) did not start listening on 127.0.0.1 in three tries.")
    }

    // MARK: IAM, spoken with the module's own signer

    /// Sends an IAM (or STS) query-protocol call and returns the answer's XML.
    package func call(_ service: String, _ parameters: [(name: String, value: String)], as credentials: Credentials?) async throws -> XMLTree {
        try await Self.call(endpoint: endpoint, service, parameters, as: credentials)
    }

    package static func call(endpoint: String, _ service: String, _ parameters: [(name: String, value: String)], as credentials: Credentials?) async throws -> XMLTree {
        let target = try Endpoint(endpoint)
        let form = PercentEncoding.query(parameters)
        var request = HTTPClientRequest(url: target.url(path: "/"))
        request.method = .POST
        let headers: [(name: String, value: String)] = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")]
        var signed: [(name: String, value: String)] = []
        if let credentials {
            let signable = SigV4.Request(method: "POST", host: target.hostHeader, path: "/", headers: headers)
            signed = SigV4(credentials: credentials, region: "us-east-1", service: service).sign(signable, payload: .bytes(Array(form.utf8)), at: Date())
        }
        for (name, value) in headers + signed { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: form))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = Array(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status.code == 200, let xml = XMLTree.parse(body) else {
            throw MotoFailure("\(service) \(parameters.first?.value ?? "") answered \(response.status.code): \(String(decoding: body, as: UTF8.self))")
        }
        return xml
    }

    /// The first three (unauthenticated) requests: a user, its key, an allow-all policy.
    private static func bootstrapAdmin(endpoint: String) async throws -> Credentials {
        let anyone = Credentials(accessKeyId: "AKIABOOTSTRAP0000000", secretAccessKey: "unchecked", source: "the test bootstrap")
        _ = try await call(endpoint: endpoint, "iam", [("Action", "CreateUser"), ("Version", "2010-05-08"), ("UserName", "segsync-admin")], as: anyone)
        let key = try await call(endpoint: endpoint, "iam", [("Action", "CreateAccessKey"), ("Version", "2010-05-08"), ("UserName", "segsync-admin")], as: anyone)
        _ = try await call(endpoint: endpoint, "iam", [
            ("Action", "PutUserPolicy"), ("Version", "2010-05-08"), ("UserName", "segsync-admin"), ("PolicyName", "everything"),
            ("PolicyDocument", #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#),
        ], as: anyone)
        return try accessKey(key, source: "the moto admin user")
    }

    /// A new IAM user whose only permissions are `actions` (on everything).
    public func user(_ name: String, allowed actions: [String]) async throws -> Credentials {
        _ = try await call("iam", [("Action", "CreateUser"), ("Version", "2010-05-08"), ("UserName", name)], as: admin)
        let list = actions.map { "\"\($0)\"" }.joined(separator: ",")
        _ = try await call("iam", [
            ("Action", "PutUserPolicy"), ("Version", "2010-05-08"), ("UserName", name), ("PolicyName", "only"),
            ("PolicyDocument", #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[\#(list)],"Resource":"*"}]}"#),
        ], as: admin)
        let key = try await call("iam", [("Action", "CreateAccessKey"), ("Version", "2010-05-08"), ("UserName", name)], as: admin)
        return try Self.accessKey(key, source: "the moto user \(name)")
    }

    private static func accessKey(_ answer: XMLTree, source: String) throws -> Credentials {
        guard let created = answer.first("CreateAccessKeyResult")?.first("AccessKey"), let id = created.text("AccessKeyId"),
            let secret = created.text("SecretAccessKey")
        else { throw MotoFailure("CreateAccessKey gave no key") }
        return Credentials(accessKeyId: id, secretAccessKey: secret, source: source)
    }

    /// A client of this server signing with `credentials` (the admin's by default).
    public func client(_ credentials: Credentials? = nil, retry: S3RetryPolicy = S3RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(10))) throws -> S3Client {
        try S3Client(
            configuration: S3Configuration(region: "us-east-1", endpoint: endpoint, pathStyle: true),
            credentials: CredentialChain(fixed: credentials ?? admin), httpClient: .shared, retry: retry)
    }

    /// A new bucket no other test uses.
    public func bucket(_ client: S3Client? = nil) async throws -> String {
        let name = "segsync-\(UUID().uuidString.lowercased().prefix(13))"
        try await (client ?? self.client()).createBucket(name)
        return name
    }
}

public struct MotoFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A port nothing listens on now (the kernel's pick for port 0).
public func freePort() throws -> Int {
    let fd = socket(AF_INET, streamSocket, 0)
    guard fd >= 0 else { throw MotoFailure("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw MotoFailure("bind() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` within a minute.
public func waitUntilListening(port: Int, while server: HelperServer) async -> Bool {
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline, server.isRunning {
        let fd = socket(AF_INET, streamSocket, 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        close(fd)
        if connected { return true }
        try? await Task.sleep(for: .milliseconds(100))
    }
    return false
}

#if os(Linux)
private let streamSocket = Int32(SOCK_STREAM.rawValue)
#else
private let streamSocket = SOCK_STREAM
#endif
