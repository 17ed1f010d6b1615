import Foundation
import SegSync

/// GitHub Actions' job summary: with `GITHUB_STEP_SUMMARY` set, every command that plans
/// or applies appends a Markdown section, also when nothing changed.
struct StepSummary {
    /// The summary file, when there is one to write.
    let path: String?

    init(_ context: CommandContext) {
        path = context.environment["GITHUB_STEP_SUMMARY"].flatMap { $0.isEmpty ? nil : context.path($0) }
    }

    func append(_ markdown: String) {
        guard let path,
              let handle = FileHandle(forWritingAtPath: path) ?? (FileManager.default.createFile(atPath: path, contents: nil) ? FileHandle(forWritingAtPath: path) : nil)
        else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        handle.write(Data(markdown.utf8))
    }

    /// "No changes: N partitions up to date." or the plan's counts and its text.
    func plan(_ plan: Plan, manifest: String) {
        guard path != nil else { return }  // rendering a large plan is not free
        var text = "### segsync plan — `\(manifest)`\n\n"
        if !plan.hasChanges && plan.givenUp.isEmpty {
            text += "No changes: \(plan.upToDate) partition\(plan.upToDate == 1 ? "" : "s") up to date.\n\n"
        } else {
            text += Self.counts(plan) + "\n<details><summary>Plan</summary>\n\n```\n" + PlanRenderer.text(plan) + "```\n\n</details>\n\n"
        }
        append(text)
    }

    static func counts(_ plan: Plan) -> String {
        var text = "| | partitions |\n| --- | ---: |\n"
        for kind in Plan.Kind.allCases where plan.count(kind) > 0 {
            text += "| \(kind.rawValue) | \(plan.count(kind)) |\n"
        }
        text += "| up to date | \(plan.upToDate) |\n"
        if !plan.givenUp.isEmpty { text += "| given up | \(plan.givenUp.count) |\n" }
        return text
    }

    func append(plan: Plan, report: ApplyReport?, manifest: String) {
        guard path != nil else { return }
        var text = "### segsync apply — `\(manifest)`\n\n"
        guard let report else {
            text += "No changes: \(plan.upToDate) partition\(plan.upToDate == 1 ? "" : "s") up to date.\n\n"
            append(text)
            return
        }
        text += Self.counts(plan)
        text += "| finished now | \(report.done) |\n| still running | \(report.stillRunning.count) |\n| failed | \(report.failures.count) |\n"
        if report.finalized > 0 {
            text += "| finalized | \(report.finalized) |\n| of which changed | \(report.finalizedChanged) |\n"
        }
        text += "\n"
        if report.finalized > 0 { text += ApplyCommand.finalizedSentence(report) + "\n\n" }
        if report.adopted > 0 {
            text += "\(report.adopted) export\(report.adopted == 1 ? "" : "s") of creates whose answers were lost found on FullStory and adopted.\n\n"
        }
        if let unclaimed = ApplyCommand.unclaimedSentence(report) { text += "**\(unclaimed)**\n\n" }
        if !report.failures.isEmpty {
            text += "**Failures**\n\n"
            for failure in report.failures { text += "- `\(failure.export)` \(failure.label): \(failure.message)\n" }
            text += "\n"
        }
        append(text)
    }
}

/// Workflow commands for GitHub Actions (`GITHUB_ACTIONS=true`): failed partitions as
/// `::error`, warnings as `::warning`, so they show on the run's page and in pull requests.
/// Written to standard error (the runner reads both streams), so `--json` stays clean.
struct Annotations {
    let enabled: Bool
    let standardError: TextStream

    init(_ context: CommandContext) {
        enabled = context.environment["GITHUB_ACTIONS"] == "true"
        standardError = context.standardError
    }

    /// `%`, CR and LF escaped, as the runner expects; in properties also `:` and `,`.
    static func escape(_ text: String, property: Bool = false) -> String {
        var result = text.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\r", with: "%0D").replacingOccurrences(of: "\n", with: "%0A")
        if property { result = result.replacingOccurrences(of: ":", with: "%3A").replacingOccurrences(of: ",", with: "%2C") }
        return result
    }

    func error(title: String, _ message: String) {
        guard enabled else { return }
        standardError.write("::error title=\(Self.escape(title, property: true))::\(Self.escape(message))\n")
    }

    /// `::error` or `::warning`, with the file and position when the diagnostic has them.
    func annotate(_ diagnostic: Diagnostic) {
        guard enabled, diagnostic.severity != .note else { return }
        var properties: [String] = []
        if let file = diagnostic.file { properties.append("file=\(Self.escape(file, property: true))") }
        if let location = diagnostic.location { properties += ["line=\(location.line)", "col=\(location.column)"] }
        let command = diagnostic.severity == .error ? "error" : "warning"
        standardError.write("::\(command)\(properties.isEmpty ? "" : " " + properties.joined(separator: ","))::\(Self.escape(diagnostic.message))\n")
    }
}
