import Foundation
import SegSync

/// Progress output: plain lines on a terminal, timestamped lines otherwise (CI logs).
struct Console: Sendable {
    let isTerminal = isatty(STDOUT_FILENO) != 0

    func event(_ line: String) {
        if isTerminal {
            printOut(line + "\n")
        } else {
            printOut("\(Timestamp.format(Date().rounded())) \(line)\n")
        }
    }
}

extension Date {
    /// Whole seconds: log lines need no milliseconds.
    func rounded() -> Date { Date(timeIntervalSince1970: timeIntervalSince1970.rounded(.down)) }
}

/// A Markdown summary appended to `$GITHUB_STEP_SUMMARY` when that variable is set.
enum StepSummary {
    static func append(plan: Plan, report: ApplyReport, manifest: String) {
        guard let path = ProcessInfo.processInfo.environment["GITHUB_STEP_SUMMARY"], !path.isEmpty,
              let handle = FileHandle(forWritingAtPath: path) ?? (FileManager.default.createFile(atPath: path, contents: nil) ? FileHandle(forWritingAtPath: path) : nil)
        else { return }
        defer { try? handle.close() }
        var text = "### segsync apply — `\(manifest)`\n\n| | partitions |\n| --- | ---: |\n"
        for kind in Plan.Kind.allCases where plan.count(kind) > 0 {
            text += "| \(kind.rawValue) | \(plan.count(kind)) |\n"
        }
        text += "| up to date | \(plan.upToDate) |\n| finished now | \(report.done) |\n| still running | \(report.stillRunning.count) |\n| failed | \(report.failures.count) |\n\n"
        if !report.failures.isEmpty {
            text += "**Failures**\n\n"
            for failure in report.failures { text += "- `\(failure.export)` \(failure.label): \(failure.message)\n" }
            text += "\n"
        }
        _ = try? handle.seekToEnd()
        handle.write(Data(text.utf8))
    }
}
