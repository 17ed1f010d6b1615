import Foundation
import NIOSSL
import PostgresNIO
import SegSync

/// A PostgreSQL connection string (`postgres://user:password@host:5432/db?sslmode=require`),
/// read from the environment only, and never printed with its password.
struct DatabaseURL {
    var configuration: PostgresConnection.Configuration
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
        let user = url.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        let password = url.password.flatMap { $0.removingPercentEncoding }
        let path = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        let database = path.isEmpty ? user : (path.removingPercentEncoding ?? path)
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
        configuration = PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: choice)
        let timeout = query["connect_timeout"].flatMap { Int64($0) } ?? 10
        configuration.options.connectTimeout = .seconds(max(1, timeout))
        // SNI takes names only: an address is checked against the certificate's IP entries.
        let isAddress = host.contains(":") || host.split(separator: ".").allSatisfy { Int($0) != nil }
        if mode != "disable", !isAddress { configuration.options.tlsServerName = host }
    }
}
