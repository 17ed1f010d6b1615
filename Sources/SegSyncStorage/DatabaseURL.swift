#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import SegSync

/// A PostgreSQL connection string (`postgres://user:password@host:5432/db?sslmode=require`),
/// read from the environment only, and never printed with its password.
struct DatabaseURL {
    var host: String
    var port: Int
    var username: String
    var password: String?
    var database: String
    var tls: PostgresConnection.Configuration.TLS
    var options = PostgresConnection.Configuration.Options()
    /// `postgres://user@host:5432/db`: for messages.
    var redacted: String

    /// libpq's `sslmode` values: `disable`, `allow`/`prefer` (TLS when the server offers
    /// it; the default, as in libpq), `require` (TLS, certificate not checked),
    /// `verify-ca`, `verify-full`; `sslrootcert=FILE` names the CA to trust.
    init(_ text: String, variable: String) throws {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(),
              scheme == "postgres" || scheme == "postgresql" else {
            throw SegSyncError("\(variable) is not a PostgreSQL connection string; write it like postgres://user:password@host:5432/database?sslmode=require.")
        }
        let host = url.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
        let port = url.port ?? 5432
        // `user`, `password` and `path` come percent-decoded from URLComponents: decoding
        // them again would turn a password `pa%25ss` (pa%ss) into nothing.
        let user = url.user.flatMap { $0.isEmpty ? nil : $0 } ?? "postgres"
        let password = url.password
        let path = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        let database = path.isEmpty ? user : path
        var query: [String: String] = [:]
        for item in url.queryItems ?? [] { query[item.name] = item.value ?? "" }
        redacted = "postgres://\(user)@\(host):\(port)/\(database)"

        let mode = query["sslmode"] ?? "prefer"
        var tls = TLSConfiguration.makeClientConfiguration()
        if let root = query["sslrootcert"] {
            tls.trustRoots = .file(root)
        }
        let context: () throws -> NIOSSLContext = {
            do { return try NIOSSLContext(configuration: tls) } catch {
                throw SegSyncError("cannot set up TLS for \(variable) (\(error)).")
            }
        }
        let choice: PostgresConnection.Configuration.TLS
        switch mode {
        case "disable":
            choice = .disable
        case "allow", "prefer":
            tls.certificateVerification = .none
            choice = .prefer(try context())
        case "require":
            tls.certificateVerification = .none
            choice = .require(try context())
        case "verify-ca":
            tls.certificateVerification = .noHostnameVerification
            choice = .require(try context())
        case "verify-full":
            tls.certificateVerification = .fullVerification
            choice = .require(try context())
        default:
            throw SegSyncError("\(variable) has sslmode=\(mode); segsync understands disable, allow, prefer, require, verify-ca and verify-full.")
        }
        for key in query.keys where !["sslmode", "sslrootcert", "application_name", "connect_timeout"].contains(key) {
            throw SegSyncError("\(variable) has the parameter '\(key)', which segsync does not understand; it reads sslmode, sslrootcert, application_name and connect_timeout.")
        }
        self.host = host
        self.port = port
        self.username = user
        self.password = password
        self.database = database
        self.tls = choice
        let timeout = query["connect_timeout"].flatMap { Int64($0) } ?? 10
        options.connectTimeout = .seconds(max(1, timeout))
        // SNI takes names only: an address is checked against the certificate's IP entries.
        let isAddress = host.contains(":") || host.split(separator: ".").allSatisfy { Int($0) != nil }
        if mode != "disable", !isAddress { options.tlsServerName = host }
    }

    /// Seconds of silence before the kernel probes the connection, between probes, and
    /// probes unanswered before it gives up: a server or network that vanishes without a
    /// word (a VM gone, a dropped route) closes the connection in about a minute, where
    /// TCP alone would wait for hours.
    static let keepalive = (idle: 30, interval: 10, count: 3)

    /// Connects over TCP with keepalive on. postgres-nio has no setting for it, so the
    /// socket is made here and handed over as an established channel.
    func connect(logger: Logger) async throws -> PostgresConnection {
        let tcp = SocketOptionLevel(IPPROTO_TCP)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(options.connectTimeout)
            .channelOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
            .channelOption(ChannelOptions.socket(tcp, SocketOptionName(TCP_KEEPIDLE)), value: SocketOptionValue(Self.keepalive.idle))
            .channelOption(ChannelOptions.socket(tcp, SocketOptionName(TCP_KEEPINTVL)), value: SocketOptionValue(Self.keepalive.interval))
            .channelOption(ChannelOptions.socket(tcp, SocketOptionName(TCP_KEEPCNT)), value: SocketOptionValue(Self.keepalive.count))
            .connect(host: host, port: port).get()
        var configuration = PostgresConnection.Configuration(establishedChannel: channel, tls: tls, username: username,
                                                             password: password, database: database)
        configuration.options = options
        do {
            return try await PostgresConnection.connect(on: channel.eventLoop, configuration: configuration, id: 1, logger: logger)
        } catch {
            try? await channel.close()
            throw error
        }
    }
}
