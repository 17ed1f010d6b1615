import Foundation
import SegSync

/// Apply's output. On a terminal: event lines above a progress bar that redraws in
/// place. Elsewhere (CI logs): one timestamped line per event, no control characters.
final class Console: @unchecked Sendable {
    let isTerminal = isatty(STDOUT_FILENO) != 0
    private let lock = NSLock()
    private var total = 0
    private var done = 0
    private var failed = 0
    private var waiting = 0

    /// Starts the progress bar for `total` partitions.
    func begin(total: Int) {
        lock.withLock { self.total = total }
        redraw()
    }

    func event(_ line: String) {
        lock.withLock {
            if isTerminal {
                printOut("\r\u{1B}[K" + line + "\n" + bar())
            } else {
                printOut("\(Timestamp.format(Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)))) \(line)\n")
            }
        }
    }

    func finished(_ outcome: ApplyReport.Outcome) {
        lock.withLock {
            switch outcome {
            case .done: done += 1
            case .failed: failed += 1
            case .stillRunning: waiting += 1
            }
        }
        redraw()
    }

    /// Removes the progress bar.
    func end() {
        if isTerminal { printOut("\r\u{1B}[K") }
    }

    private func redraw() {
        guard isTerminal else { return }
        lock.withLock { printOut("\r\u{1B}[K" + bar()) }
    }

    private func bar() -> String {
        guard total > 0 else { return "" }
        let width = 30
        let finished = done + failed + waiting
        let filled = min(width, finished * width / total)
        var text = "[" + String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled) + "] \(finished)/\(total)"
        if failed > 0 { text += " · \(failed) failed" }
        if waiting > 0 { text += " · \(waiting) left running" }
        return text
    }
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
