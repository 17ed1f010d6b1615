import Foundation
import Testing

/// The PostgreSQL server the tests use: `SEGSYNC_TEST_DATABASE_URL`, which `.ci/run`
/// (and `.ci/postgres run swift test`) sets after starting a throwaway cluster.
///
/// Without it the PostgreSQL tests skip with a printed reason, except under `CI=true`,
/// where a missing server is a failure: CI must never pass by testing less.
public enum TestDatabase {
    public static let variable = "SEGSYNC_TEST_DATABASE_URL"

    public static var url: String? {
        let value = ProcessInfo.processInfo.environment[variable] ?? ""
        return value.isEmpty ? nil : value
    }

    /// The server's URL, or nil after saying why the test does not run.
    public static func urlOrSkip(_ test: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        if let url { return url }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            Issue.record("\(variable) is not set under CI=true: the PostgreSQL tests must run (.ci/run starts the server).", sourceLocation: sourceLocation)
        } else {
            print("skipped (PostgreSQL): \(test): set \(variable), or run `.ci/postgres run swift test`")
        }
        return nil
    }

    /// A workspace name no other test uses.
    public static func uniqueWorkspace(_ prefix: String = "t") -> String {
        "\(prefix)-\(UUID().uuidString.lowercased().prefix(12))"
    }

    /// `url` pointing at another database on the same server.
    public static func url(_ url: String, database: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.path = "/" + database
        return components.string ?? url
    }

    /// Runs SQL with `psql` (the server's own client) and returns its unaligned output.
    @discardableResult
    public static func psql(_ sql: String, url: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PSQLFailure(message: "psql failed: \(String(decoding: errors, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public struct PSQLFailure: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }
}
