import Foundation

/// Where requests go: scheme, host and port. Plain `http` is allowed only for loopback
/// hosts, so credentials and data never cross a network unencrypted.
package struct Endpoint: Sendable, Hashable {
    package var scheme: String
    package var host: String
    package var port: Int?

    package init(_ text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty
        else {
            throw ObjectStoreError.invalidConfiguration("The endpoint '\(text)' is not a URL like https://s3.example.com.")
        }
        guard components.path.isEmpty || components.path == "/", components.query == nil, components.user == nil else {
            throw ObjectStoreError.invalidConfiguration("The endpoint '\(text)' must be only a scheme, host and port, with no path, query or user.")
        }
        guard scheme == "https" || (scheme == "http" && Self.isLoopback(host)) else {
            throw ObjectStoreError.invalidConfiguration(
                scheme == "http"
                    ? "The endpoint '\(text)' is plain http on a host that is not loopback: use https (http is allowed only for localhost, 127.0.0.0/8 and ::1)."
                    : "The endpoint '\(text)' must use https.")
        }
        self.scheme = scheme
        self.host = host
        self.port = components.port
    }

    init(scheme: String, host: String, port: Int?) {
        self.scheme = scheme
        self.host = host
        self.port = port
    }

    package static func isLoopback(_ host: String) -> Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        return bare == "localhost" || bare.hasSuffix(".localhost") || bare == "::1" || bare.hasPrefix("127.")
    }

    /// The `Host` header: the port only when it is not the scheme's default.
    package var hostHeader: String {
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        guard let port, port != (scheme == "https" ? 443 : 80) else { return bracketed }
        return "\(bracketed):\(port)"
    }

    /// The same endpoint with `label.` in front of the host (virtual-hosted addressing).
    package func prefixed(_ label: String) -> Endpoint {
        Endpoint(scheme: scheme, host: "\(label).\(host)", port: port)
    }

    /// `scheme://host[:port]` followed by an already encoded target (`/path?query`).
    package func url(path encodedTarget: String) -> String { "\(scheme)://\(hostHeader)\(encodedTarget)" }

    package var display: String { "\(scheme)://\(hostHeader)" }
}
