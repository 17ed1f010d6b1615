import Foundation
import Logging
import SegSyncVocabulary

/// swift-log's lines (the API client's `-v` log) on a context's standard error, in the
/// layout of swift-log's `StreamLogHandler`, so an in-process run logs where its own
/// output goes, not to the process's standard error.
struct ContextLogHandler: LogHandler {
    let label: String
    let stream: TextStream
    let now: @Sendable () -> Date
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        let pretty = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }.joined(separator: " ")
        stream.write("\(Timestamp.format(now())) \(event.level) \(label) :\(pretty) [\(event.source)] \(event.message)\n")
    }
}

extension CommandContext {
    /// The API client's logger: every call with `-v`, errors only otherwise.
    var apiLogger: Logger { logger("segsync.api", level: output.verbosity == .verbose ? .debug : .error) }

    /// A logger writing to this context's standard error at `level`.
    func logger(_ label: String, level: Logger.Level) -> Logger {
        var logger = Logger(label: label) { [standardError, now] label in
            ContextLogHandler(label: label, stream: standardError, now: now)
        }
        logger.logLevel = level
        return logger
    }
}
