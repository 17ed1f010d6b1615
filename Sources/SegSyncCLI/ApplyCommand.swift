import ArgumentParser
import Foundation
import FullStoryAPI
import FullStoryContract
import SegSync
import SegSyncStorage
import SegSyncVocabulary

struct ApplyCommand: ContextCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Create the missing exports, resume running ones, download finished ones.",
        discussion: Help.text(
            """
            Plans like `segsync plan`, then works through the plan: every partition goes \
            create → poll → download → verify → record, with bounded parallelism and one shared \
            rate limiter. Never waits for input. At a terminal a display below the log shows the \
            operations' progress, each download's bytes and rate, and an ETA; elsewhere each event \
            is one timestamped line.
            """,
            """
            Exit status: 0 everything converged; 1 an error (the failed partitions are listed); \
            3 --max-wait ran out while operations were still running (they stay in state and the \
            next run resumes them); 130 interrupted (Ctrl-C again exits at once).
            """,
            Help.environment("FULLSTORY_API_KEY", "FULLSTORY_API_URL", "SEGSYNC_DATABASE_URL", "SEGSYNC_STATE_TIMEOUT", "SEGSYNC_DEBUG", "NO_COLOR",
                             "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS"),
            Help.examples(
                "segsync apply",
                "segsync apply --max-wait 45m --parallelism 8",
                "segsync plan --out plan.json && segsync apply plan.json",
                "segsync apply --json-events | jq -c 'select(.event == \"downloaded\")'")))

    @OptionGroup var manifest: ManifestOptions
    @OptionGroup var planning: PlanningOptions
    @OptionGroup var locking: LockOptions

    @Argument(help: ArgumentHelp("A plan saved by `segsync plan --out`; refused if the manifest, state or folder changed since.", valueName: "plan-file"))
    var planFile: String?

    @Flag(help: "Print the plan and change nothing.")
    var dryRun = false

    @Flag(help: "Print one JSON document at the end (format_version 1) instead of the log: each partition's outcome, file and checksum.")
    var json = false

    @Flag(help: "Print one JSON line per event as it happens (created, polled, downloading, downloaded, error, …), then the --json report as the last line.")
    var jsonEvents = false

    @Option(help: ArgumentHelp("Stop waiting for running operations after this long (like 30m); they are resumed by the next run. Default: wait until every one ends.", valueName: "duration"))
    var maxWait: String?

    @Option(help: ArgumentHelp("Downloads at once (1–64).", valueName: "downloads"))
    var parallelism = 4

    @Option(help: ArgumentHelp("Exports created and waited for at once (1–1000).", valueName: "exports"))
    var maxInFlight = 32

    @Option(help: ArgumentHelp("First wait between polls of a running operation, in seconds (default: 2, or 0.5 on the emulator; later waits grow, and follow the API's progress estimate).", valueName: "seconds"))
    var pollInterval: Double?

    @Option(help: ArgumentHelp("How long an API call waits for its answer, in seconds (default: 60). A create whose answer does not come in time is looked for by the next run in the API's operations list.", valueName: "seconds"))
    var requestTimeout: Double?

    @Flag(help: "Delete recorded outputs that are no longer declared, as `prune: true` does.")
    var prune = false

    @Flag(help: "Export again partitions that failed \(Planner.attemptLimit) times in earlier runs.")
    var retryFailed = false

    @Flag(help: "Hash every output instead of trusting unchanged sizes and modification times, and repair what differs.")
    var checksum = false

    func validate() throws {
        if let maxWait, Span.duration(maxWait) == nil {
            throw ValidationError("--max-wait \(maxWait) is not a duration; write it like 90s, 30m, 2h or 1h30m.")
        }
        if parallelism < 1 || parallelism > 64 { throw ValidationError("--parallelism must be between 1 and 64.") }
        if maxInFlight < 1 || maxInFlight > 1000 { throw ValidationError("--max-in-flight must be between 1 and 1000.") }
        if let pollInterval, !(0.05...600).contains(pollInterval) { throw ValidationError("--poll-interval must be between 0.05 and 600 seconds.") }
        if let requestTimeout, !(0.1...3600).contains(requestTimeout) { throw ValidationError("--request-timeout must be between 0.1 and 3600 seconds.") }
        if planFile != nil, planning.now != nil || !planning.targets.isEmpty || prune || retryFailed || checksum {
            throw ValidationError("a saved plan carries its own --now, --target, --prune, --retry-failed and --checksum; pass none of them with it.")
        }
    }

    var common: OutputOptions { manifest.output }

    func run(in context: CommandContext) async throws {
        let saved = try planFile.map { try SavedPlan.load(path: context.path($0)) }
        let (now, options) = try saved.map(SavedPlan.inputs)
            ?? (planning.instant(context), .init(targets: planning.targets, forcePrune: prune, retryFailed: retryFailed, checksum: checksum))
        // Exporting a partition that has not ended yet would record incomplete data as done.
        if !dryRun, now > context.now().addingTimeInterval(300) {
            throw SegSyncError("--now \(Timestamp.format(now)) is in the future; apply only exports what has already happened. Use it with plan, or with apply --dry-run.")
        }
        // Manifest errors (opening the workspace, planning) are diagnostics; the run's own
        // end (exit statuses, a lost store) passes through as it is.
        try await context.reportingDiagnostics {
            try await context.withWorkspace(manifest, locking: locking, command: "segsync apply") { workspace in
                context.printWarnings(workspace.manifest, now: now)
                var snapshot = try await workspace.snapshot(depth: options.checksum ? .full : .quick)
                // A saved plan was made from refreshed operations: compare it with the same.
                if let saved { RefreshedOperation.overlay(saved.refreshed ?? [], on: &snapshot.state) }
                let plan = try workspace.plan(snapshot, now: now, options: options)
                if let saved, let planFile { try SavedPlan.check(saved, against: plan, path: planFile) }
                try await execute(plan, snapshot: snapshot, in: workspace, context: context)
            }
        }
    }

    /// --json or --json-events: standard output is for machines only.
    var machine: Bool { json || jsonEvents }

    /// What apply prints while it works, decided by --json, --json-events and -q.
    func consoleMode(_ context: CommandContext) -> Console.Mode {
        jsonEvents ? .jsonEvents : json || context.output.verbosity == .quiet ? .silent : .lines
    }

    /// The final report of --json and --json-events.
    func printDocument(_ plan: Plan, _ report: ApplyReport?, console: Console?, interrupted: Bool = false, exitCode: Int32,
                       _ context: CommandContext) {
        guard machine else { return }
        var document = ApplyDocument(plan: plan, report: report, files: console?.downloaded ?? [:],
                                     interrupted: interrupted, exitCode: exitCode, dryRun: dryRun)
        if jsonEvents {
            document.event = "report"
            if let line = try? MachineJSON.line(document) { context.out(line) }
        } else if let text = try? MachineJSON.pretty(document) {
            context.out(text)
        }
    }

    /// The plan as people read it: all of it, or with -q its last line.
    func printPlan(_ plan: Plan, _ context: CommandContext) {
        guard !machine else { return }
        let output = context.output
        if output.verbosity > .quiet {
            context.out(PlanRenderer.text(plan, paint: output.paint))
        } else if !plan.hasChanges {
            context.out(PlanRenderer.summary(plan) + "\n")  // with nothing to do, the plan's line is the final line
        }
    }

    func execute(_ plan: Plan, snapshot: Workspace.Snapshot, in workspace: Workspace, context: CommandContext) async throws {
        if dryRun || !plan.hasChanges { printPlan(plan, context) }
        if dryRun {
            printDocument(plan, nil, console: nil, exitCode: ExitCodes.success, context)
            return
        }
        var tidied = snapshot
        try await workspace.tidy(plan, &tidied, now: context.now())
        guard plan.hasChanges else {
            StepSummary(context).append(plan: plan, report: nil, manifest: manifest.path(in: context))
            let code = plan.givenUp.isEmpty ? ExitCodes.success : ExitCodes.failure
            printDocument(plan, ApplyReport(), console: nil, exitCode: code, context)
            if code != ExitCodes.success { throw ExitCode(code) }
            return
        }
        let console = Console(mode: consoleMode(context), plan: plan, context: context)
        let work = start(plan, tidied, in: workspace, console: console, context: context)
        // A PostgreSQL connection lost mid-run took the run lock with it: stop at once.
        let lost = FirstReason()
        workspace.store.onLoss { reason in
            lost.set(reason)
            work.cancel()
        }
        let interruptions = context.handlesSignals ? Self.interruptions(cancelling: work, context) : []
        let report: ApplyReport
        do {
            report = try await work.value
        } catch where work.isCancelled {
            console.end()
            try endInterrupted(plan, error: error, lost: lost, console: console, context)
        }
        interruptions.forEach { $0.cancel() }
        console.end()
        try finish(plan, report, lost: lost, cancelled: work.isCancelled, console: console, context)
    }

    /// The apply itself, as a task that an interrupt or a lost store can cancel.
    func start(_ plan: Plan, _ snapshot: Workspace.Snapshot, in workspace: Workspace, console: Console,
               context: CommandContext) -> Task<ApplyReport, any Error> {
        var options = Executor.Options(parallelism: parallelism, maxInFlight: maxInFlight, maxWait: maxWait.flatMap(Span.duration))
        if let pollInterval {
            options.pollInterval = .milliseconds(Int(pollInterval * 1000))
        } else if workspace.manifest.api.endpoint == APISettings.emulatorEndpoint {
            options.pollInterval = .milliseconds(500)
        }
        // A test hook: hold each create's id this long between its answer and its commit,
        // so a test can kill the run in that instant (the window adoption closes).
        if let hold = context.environment["SEGSYNC_TEST_HOLD_ID_COMMIT"].flatMap(Double.init), hold > 0 {
            options.holdBeforeIdCommit = .milliseconds(Int(hold * 1000))
        }
        let requestTimeout = self.requestTimeout
        return Task { [options] in
            try await APIConnection.with(api: workspace.manifest.api, context: context, tune: { configuration in
                if let requestTimeout { configuration.requestTimeout = .milliseconds(Int(requestTimeout * 1000)) }
            }) { connection in
                // One cheap call first: a wrong key or an unreachable endpoint is one clear
                // error, not the same error for every partition.
                if !plan.work.isEmpty {
                    _ = try await connection.client.listSegmentsPage(limit: 1)
                    for warning in try await workspace.output.preflight() { context.report(Diagnostic(.warning, warning)) }
                }
                printPlan(plan, context)
                console.begin(total: plan.work.count)
                let executor = Executor(manifest: workspace.manifest, layout: workspace.layout, client: connection.client, output: workspace.output,
                                        options: options, events: { console.event($0) }, finished: { console.finished($0) },
                                        clock: context.now)
                return try await executor.apply(plan, snapshot: snapshot, store: workspace.store)
            }
        }
    }

    /// How long an interrupted run may wind down before it exits anyway: longer than a
    /// create's request timeout (60 s) plus a commit, so an id the server sends is kept.
    static let interruptGrace: Duration = .seconds(90)

    /// Ctrl-C or a CI cancellation: stop starting work, keep what is recorded, exit 130.
    /// A second one exits at once; a run still winding down after ``interruptGrace`` too.
    static func interruptions(cancelling work: Task<ApplyReport, any Error>, _ context: CommandContext) -> [any DispatchSourceSignal] {
        let interrupts = Counter()
        return [SIGINT, SIGTERM].map { (signalNumber: Int32) -> any DispatchSourceSignal in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                if interrupts.increment() > 1 {
                    context.error("\nInterrupted again: exiting now. Recorded operations are resumed by the next run.")
                    Foundation.exit(ExitCodes.interrupted)
                }
                context.error("\nInterrupting: finishing the calls in flight and recording their results (Ctrl-C again to exit at once).")
                work.cancel()
                // Bounded whatever the API or the state store is doing: a create in flight
                // has its request timeout to answer and its commit the store's wait.
                DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Int(interruptGrace.components.seconds))) {
                    context.error("\nStill winding down after \(interruptGrace.components.seconds) s: exiting now. Recorded operations are resumed by the next run.")
                    Foundation.exit(ExitCodes.interrupted)
                }
            }
            source.resume()
            return source
        }
    }

    /// The run was cancelled before it had a report to give.
    func endInterrupted(_ plan: Plan, error: any Error, lost: FirstReason, console: Console, _ context: CommandContext) throws -> Never {
        if context.output.verbosity == .verbose { context.error("debug: the interrupted run ended with: \(error)") }
        if let reason = lost.reason {
            printDocument(plan, nil, console: console, interrupted: true, exitCode: ExitCodes.failure, context)
            throw SegSyncError(reason)
        }
        printDocument(plan, nil, console: console, interrupted: true, exitCode: ExitCodes.interrupted, context)
        if !machine { context.out("\nInterrupted before any export was made.\n") }
        throw ExitCode(ExitCodes.interrupted)
    }

    /// Reports the run and ends with its exit status.
    func finish(_ plan: Plan, _ report: ApplyReport, lost: FirstReason, cancelled: Bool, console: Console, _ context: CommandContext) throws {
        if let reason = lost.reason {
            printDocument(plan, report, console: console, interrupted: true, exitCode: ExitCodes.failure, context)
            if !machine { context.out("\n" + Self.summary(report)) }
            throw SegSyncError(reason)
        }
        if cancelled {
            printDocument(plan, report, console: console, interrupted: true, exitCode: ExitCodes.interrupted, context)
            let planned = plan.work.count
            let left = max(0, planned - report.done - report.failures.count)
            if !machine {
                context.out("\nInterrupted: \(report.done) done, \(report.failures.count) failed, \(left) left for the next run (recorded operations are resumed, not exported again).\n")
            }
            throw ExitCode(ExitCodes.interrupted)
        }
        StepSummary(context).append(plan: plan, report: report, manifest: manifest.path(in: context))
        let annotations = Annotations(context)
        for failure in report.failures {
            annotations.error(title: "segsync: \(failure.export) \(failure.label)", failure.message)
        }
        // A stopped run and unwritable derived files are said once, for the run, at the end.
        let runProblems = [report.stopped.map { "\($0) The run stopped; every recorded export is kept and resumed by the next run." },
                           report.derivedFilesProblem].compactMap { $0 }
        let code = !report.failures.isEmpty || !plan.givenUp.isEmpty || !runProblems.isEmpty ? ExitCodes.failure
            : !report.stillRunning.isEmpty ? ExitCodes.incomplete : ExitCodes.success
        printDocument(plan, report, console: console, exitCode: code, context)
        if !machine { context.out((consoleMode(context) == .silent ? "" : "\n") + Self.summary(report, paint: context.output.paint)) }
        if !runProblems.isEmpty {
            for problem in runProblems { annotations.error(title: "segsync apply", problem) }
            throw SegSyncError(runProblems.joined(separator: "\n"))
        }
        if code != ExitCodes.success { throw ExitCode(code) }
    }

    /// `2 exports on FullStory that no partition claims: 5189… (created 2026-12-05T01:02:03.250Z), …`:
    /// lost creates that could not be matched one to one. Nil when there are none.
    static func unclaimedSentence(_ report: ApplyReport) -> String? {
        let unclaimed = report.unclaimedExports
        guard !unclaimed.isEmpty else { return nil }
        let list = unclaimed.prefix(10).map { "\($0.id) (created \($0.createdAt.map(Timestamp.format) ?? "?"))" }.joined(separator: ", ")
        return "\(unclaimed.count) export\(unclaimed.count == 1 ? "" : "s") on FullStory that no partition claims: \(list)\(unclaimed.count > 10 ? ", …" : ""). "
            + "They were made while creates whose answers were lost were in flight and could not be matched one to one, so none was adopted; "
            + "segsync exports a partition again rather than guess."
    }

    /// `3 partitions finalized, 1 changed.`
    static func finalizedSentence(_ report: ApplyReport) -> String {
        "\(report.finalized) partition\(report.finalized == 1 ? "" : "s") finalized, \(report.finalizedChanged) changed."
    }

    /// The failures, grouped, and the final `Apply: …` line.
    static func summary(_ report: ApplyReport, paint: Paint = .none) -> String {
        var lines: [String] = []
        if !report.failures.isEmpty {
            lines.append(paint("Failed:", .red))
            // One line per export and reason: an unknown segment fails every partition of
            // its export the same way, and is said once.
            var groups: [(export: String, message: String, labels: [String])] = []
            for failure in report.failures {
                if let index = groups.firstIndex(where: { $0.export == failure.export && $0.message == failure.message }) {
                    groups[index].labels.append(failure.label)
                } else {
                    groups.append((failure.export, failure.message, [failure.label]))
                }
            }
            for group in groups {
                let labels = group.labels.sorted()
                let which = labels.count == 1 ? labels[0] : "\(labels.count) partitions (\(labels.first!) … \(labels.last!))"
                lines.append("  \(group.export) \(which): \(group.message)")
            }
        }
        var parts = ["\(report.done) done", "\(report.failures.count) failed"]
        if !report.stillRunning.isEmpty {
            parts.append(report.stopped == nil ? "\(report.stillRunning.count) still running (resumed by the next run)"
                : "\(report.stillRunning.count) left for the next run")
        }
        if report.pruneSkipped > 0 { parts.append("\(report.pruneSkipped) prunes skipped after errors") }
        let open = report.unknownCreates - report.adoptedAtOnce
        let next = report.listsOperations ? "looked for by the next run" : "exported again by the next run"
        let unknown = report.unknownCreates == 0 ? "" : ", \(report.unknownCreates) with an unknown id"
            + (open == 0 ? "" : open == report.unknownCreates ? " (\(next))" : " (\(open) \(next))")
        let finalized = report.finalized > 0 ? " " + finalizedSentence(report) : ""
        let adopted = report.adopted > 0 ? " \(report.adopted) adopted after a lost answer." : ""
        if let unclaimed = unclaimedSentence(report) { lines.append(paint(unclaimed, .yellow)) }
        let line = "Apply: " + parts.joined(separator: ", ") + ". \(report.createCalls) export\(report.createCalls == 1 ? "" : "s") created\(unknown)." + adopted + finalized
        let failed = !report.failures.isEmpty || report.stopped != nil || report.derivedFilesProblem != nil
        lines.append(paint(line, failed ? .red : report.stillRunning.isEmpty ? .green : .yellow))
        return lines.joined(separator: "\n") + "\n"
    }
}

