import Foundation
import SegSync
import SegSyncVocabulary

/// Apply's output while it works.
///
/// - At a terminal: event lines in aligned columns above a display that redraws in place
///   (a bar, the operations' progress, each download's bytes and rate, an ETA).
/// - Elsewhere (CI logs): one timestamped line per event, no control characters.
/// - `--json-events`: one JSON line per event. `--json` and `--quiet`: nothing until the end.
final class Console: @unchecked Sendable {
    enum Mode {
        case lines
        case jsonEvents
        case silent
    }

    /// A partition being worked on, as the display shows it.
    private struct Active {
        var export: String
        var label: String
        var firstSeen: Date
        var percent: Double?
        /// Finished on the server, waiting for a download slot.
        var completed = false
        var downloadStarted: Date?
        var bytes: Int64 = 0
        var total: Int64?
    }

    let mode: Mode
    private let output: Output
    private let context: CommandContext
    private let exportWidth: Int
    private let labelWidth: Int
    private let lock = NSLock()
    private var total = 0
    private var done = 0
    private var failed = 0
    private var waiting = 0
    private var started = Date.distantPast
    private var active: [PartitionKey: Active] = [:]
    /// Lines of the live display now on screen (the cursor is at the end of the last).
    private var drawn = 0
    private var timer: (any DispatchSourceTimer)?
    /// When the last `downloading` JSON line of each partition went out (at most one a second).
    private var lastProgressLine: [PartitionKey: Date] = [:]
    /// Files downloaded in this run, for the JSON report.
    private var files: [PartitionKey: (path: String, bytes: Int64, sha256: String)] = [:]

    init(mode: Mode, plan: Plan, context: CommandContext) {
        self.mode = mode
        self.context = context
        self.output = context.output
        exportWidth = plan.actions.map(\.key.export.count).max() ?? 0
        labelWidth = plan.actions.map(\.label.count).max() ?? 0
    }

    private var live: Bool { mode == .lines && output.isTerminal && output.verbosity > .quiet }

    /// Starts the display for `total` partitions; at a terminal it redraws four times a second.
    func begin(total: Int) {
        lock.withLock {
            self.total = total
            started = context.now()
        }
        guard live else { return }
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + .milliseconds(250), repeating: .milliseconds(250))
        timer.setEventHandler { [weak self] in self?.lock.withLock { self?.redraw() } }
        timer.resume()
        lock.withLock { self.timer = timer }
    }

    func event(_ event: ApplyEvent) {
        lock.withLock {
            track(event)
            switch mode {
            case .silent:
                return
            case .jsonEvents:
                if case .downloading = event.kind, let key = event.key {
                    if let last = lastProgressLine[key], event.time.timeIntervalSince(last) < 1 { return }
                    lastProgressLine[key] = event.time
                }
                if let line = try? MachineJSON.line(event.document) { context.out(line) }
            case .lines:
                guard output.verbosity > .quiet else { return }
                if case .downloading = event.kind { return }
                if !event.isMilestone && output.verbosity < .verbose { return }
                let line = self.line(for: event)
                if output.isTerminal {
                    context.out(clearDisplay() + line + "\n")
                    redraw()
                } else {
                    context.out("\(Timestamp.format(Date(timeIntervalSince1970: event.time.timeIntervalSince1970.rounded(.down)))) \(line)\n")
                }
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
            if live { redraw() }
        }
    }

    /// Removes the display.
    func end() {
        lock.withLock {
            timer?.cancel()
            timer = nil
            if live { context.out(clearDisplay()) }
        }
    }

    /// What this run downloaded, by partition.
    var downloaded: [PartitionKey: (path: String, bytes: Int64, sha256: String)] { lock.withLock { files } }

    // MARK: - Lines

    /// `created    checkout-events 2026-11-27T12-00Z   op 3f2a… (events csv)`, columns as the plan's.
    func line(for event: ApplyEvent) -> String {
        let name = event.name.padded(to: 10)
        let paint = output.paint
        let verb: String
        switch event.kind {
        case .created, .downloaded, .adopted: verb = paint(name, .green)
        case .finalized(_, let changed, _, _, _): verb = paint(name, changed ? .yellow : .cyan)
        case .failed, .operationFailed, .pruned: verb = paint(name, .red)
        case .lost, .waiting, .prunesSkipped, .notAdopted: verb = paint(name, .yellow)
        case .polled, .downloading, .relinking: verb = paint(name, .dim)
        }
        guard let key = event.key else { return "\(verb) \(event.detail)" }
        let export = key.export.padded(to: exportWidth)
        let label = event.label.padded(to: labelWidth)
        return "\(verb) \(export) \(label)   \(event.detail)"
    }

    // MARK: - The live display

    private func track(_ event: ApplyEvent) {
        guard let key = event.key else { return }
        switch event.kind {
        case .created, .adopted:
            active[key] = Active(export: key.export, label: event.label, firstSeen: event.time)
        case .polled(_, let state, let percent):
            var entry = active[key, default: Active(export: key.export, label: event.label, firstSeen: event.time)]
            entry.percent = percent
            entry.completed = state == "COMPLETED"
            active[key] = entry
        case .downloading(let bytes, let total):
            var entry = active[key, default: Active(export: key.export, label: event.label, firstSeen: event.time)]
            if entry.downloadStarted == nil || bytes < entry.bytes { entry.downloadStarted = event.time }
            entry.bytes = bytes
            entry.total = total
            active[key] = entry
        case .downloaded(let path, let bytes, let sha256):
            active[key] = nil
            files[key] = (path, bytes, sha256)
        case .finalized(let path, _, let sha256, _, let after):
            active[key] = nil
            files[key] = (path, after.bytes, sha256)
        case .waiting, .failed, .pruned:
            active[key] = nil
        case .operationFailed, .lost:
            active[key]?.percent = nil
        case .relinking, .prunesSkipped, .notAdopted:
            break
        }
    }

    /// Moves the cursor back over the display and clears it.
    private func clearDisplay() -> String {
        guard drawn > 0 else { return "" }
        let up = drawn > 1 ? "\u{1B}[\(drawn - 1)A" : ""
        drawn = 0
        return up + "\r\u{1B}[J"
    }

    /// Redraws the display (the lock is held).
    private func redraw() {
        guard live, total > 0 else { return }
        let lines = display(now: context.now(), width: output.width)
        context.out(clearDisplay() + lines.joined(separator: "\n"))
        drawn = lines.count
    }

    private func display(now: Date, width: Int) -> [String] {
        let finished = done + failed + waiting
        let barWidth = 30
        let filled = min(barWidth, finished * barWidth / total)
        let bar = output.paint(String(repeating: "█", count: filled), .green) + String(repeating: "░", count: barWidth - filled)
        var head = "[\(bar)] \(finished)/\(total)"
        if failed > 0 { head += " · " + output.paint("\(failed) failed", .red) }
        if waiting > 0 { head += " · \(waiting) left running" }
        let elapsed = now.timeIntervalSince(started)
        head += " · " + Span.approximate(seconds: elapsed)
        if let eta = eta(now: now, finished: finished) { head += " · ETA " + Span.approximate(seconds: eta) }

        let downloading = active.filter { $0.value.downloadStarted != nil }.sorted { $0.key < $1.key }
        let running = active.values.filter { $0.downloadStarted == nil && !$0.completed }
        let ready = active.values.filter { $0.downloadStarted == nil && $0.completed }.count
        var lines = [head]
        if !running.isEmpty || !downloading.isEmpty || ready > 0 {
            var parts: [String] = []
            if !running.isEmpty {
                let estimates = running.compactMap(\.percent)
                var text = "\(running.count) export\(running.count == 1 ? "" : "s") running"
                if !estimates.isEmpty {
                    text += ", \(Int((estimates.reduce(0, +) / Double(estimates.count)).rounded()))% on average"
                    if estimates.count > 1 { text += " (\(Int(estimates.min()!.rounded()))–\(Int(estimates.max()!.rounded()))%)" }
                }
                parts.append(text)
            }
            if ready > 0 { parts.append("\(ready) ready, waiting for a download slot") }
            if !downloading.isEmpty {
                let bytes = downloading.reduce(Int64(0)) { $0 + $1.value.bytes }
                let rate = downloading.reduce(0.0) { $0 + Self.rate($1.value, now: now) }
                parts.append("\(downloading.count) downloading, \(ByteCount.format(bytes)) at \(ByteCount.format(Int64(rate)))/s")
            }
            lines.append("  " + parts.joined(separator: " · "))
        }
        for (key, entry) in downloading.prefix(4) {
            var text = "  ↓ \(key.export.padded(to: exportWidth)) \(entry.label.padded(to: labelWidth))  "
            guard entry.bytes > 0 else {
                lines.append(text + "starting")
                continue
            }
            text += ByteCount.format(entry.bytes)
            if let total = entry.total, total > 0 {
                text += " of \(ByteCount.format(total))  \(Int(Double(entry.bytes) * 100 / Double(total)))%"
            }
            text += "  \(ByteCount.format(Int64(Self.rate(entry, now: now))))/s"
            lines.append(text)
        }
        if downloading.count > 4 { lines.append("  … and \(downloading.count - 4) more downloads") }
        // A line wider than the terminal would wrap and break the redraw.
        return lines.map { Self.clip($0, to: width - 1) }
    }

    private static func rate(_ entry: Active, now: Date) -> Double {
        guard let since = entry.downloadStarted else { return 0 }
        let seconds = now.timeIntervalSince(since)
        return seconds > 0.05 ? Double(entry.bytes) / seconds : 0
    }

    /// The later of: the slowest running operation's own estimate (elapsed × remaining ÷
    /// done, from the API's percentage), and the run's pace so far applied to what is left.
    private func eta(now: Date, finished: Int) -> Double? {
        let left = total - finished
        guard left > 0 else { return nil }
        var estimate: Double?
        for entry in active.values {
            guard let percent = entry.percent, percent >= 1, percent < 100, entry.downloadStarted == nil else { continue }
            let remaining = now.timeIntervalSince(entry.firstSeen) * (100 - percent) / percent
            estimate = max(estimate ?? 0, remaining)
        }
        if finished > 0 {
            let pace = now.timeIntervalSince(started) / Double(finished) * Double(left)
            // Partitions run side by side: the pace only bounds what is not already running.
            if left > active.count || estimate == nil { estimate = max(estimate ?? 0, pace) }
        }
        return estimate
    }

    /// Cuts `text` to `width` visible characters; ANSI sequences take no width.
    static func clip(_ text: String, to width: Int) -> String {
        var visible = 0
        var result = ""
        var escape = false
        for character in text {
            if character == "\u{1B}" { escape = true }
            if !escape {
                if visible >= width { break }
                visible += 1
            }
            result.append(character)
            if escape, character.isLetter { escape = false }
        }
        return result.count < text.count && text.contains("\u{1B}[") ? result + "\u{1B}[0m" : result
    }
}
