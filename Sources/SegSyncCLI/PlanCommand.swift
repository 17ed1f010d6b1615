import ArgumentParser
import Foundation
import FullStoryAPI
import FullStoryContract
import SegSync
import SegSyncStorage

struct PlanCommand: ContextCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what apply would create, resume, download, repair, replace and prune.",
        discussion: Help.text(
            """
            Compares the manifest with its state (.segsync/state.sqlite, or the PostgreSQL \
            workspace state.backend names) and the output folder, and asks the API how running \
            operations are doing (read-only; not with --offline). Changes nothing but the run lock. \
            Symbols: + create, ~ resume, ↓ download, ! repair, ± replace, - prune.
            """,
            "Exit status with --detailed-exitcode: 0 no changes, 1 error, 2 changes (as terraform plan).",
            Help.environment("FULLSTORY_API_KEY", "FULLSTORY_API_URL", "SEGSYNC_DATABASE_URL", "NO_COLOR",
                             "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS"),
            Help.examples(
                "segsync plan",
                "segsync plan --detailed-exitcode --out plan.json",
                "segsync plan --json --offline --now 2026-11-28T00:00:00Z",
                "segsync plan --target everyone-daily --checksum")))

    @OptionGroup var manifest: ManifestOptions
    @OptionGroup var planning: PlanningOptions
    @OptionGroup var locking: LockOptions

    @Flag(help: "Print the plan as a JSON document (format_version 1).")
    var json = false

    @Flag(help: "Exit 2 when the plan has changes, 0 when it has none (1 stays an error).")
    var detailedExitcode = false

    @Flag(help: "Plan to delete recorded outputs that are no longer declared, as `prune: true` does.")
    var prune = false

    @Flag(help: "Hash every output instead of trusting unchanged sizes and modification times.")
    var checksum = false

    @Flag(help: "Plan to export again partitions that failed \(Planner.attemptLimit) times in earlier runs.")
    var retryFailed = false

    @Flag(help: "Do not ask the API how running operations are doing; plan from state alone.")
    var offline = false

    @Option(help: ArgumentHelp("Also save the plan here, for `segsync apply FILE`.", valueName: "file"))
    var out: String?

    var common: OutputOptions { manifest.output }

    func run(in context: CommandContext) async throws {
        let now = try planning.instant(context)
        let plan = try await context.reportingDiagnostics {
            try await context.withWorkspace(manifest, locking: locking, command: "segsync plan") { workspace in
                context.printWarnings(workspace.manifest, now: now)
                var snapshot = try await workspace.snapshot(depth: checksum ? .full : .quick)
                let recorded = snapshot.state
                let inFlight = !offline && snapshot.state.partitions.values.contains { [.requested, .running, .completed].contains($0.phase) }
                if inFlight { snapshot.state = await refreshed(snapshot.state, workspace: workspace, in: context) }
                var plan = try workspace.plan(snapshot, now: now, options: .init(
                    targets: planning.targets, forcePrune: prune, retryFailed: retryFailed, checksum: checksum))
                if inFlight { plan.refreshed = RefreshedOperation.changes(from: recorded, to: snapshot.state) }
                return plan
            }
        }
        let output = context.output
        context.out(json ? PlanRenderer.json(plan)
                    : output.verbosity == .quiet ? PlanRenderer.summary(plan) + "\n" : PlanRenderer.text(plan, paint: output.paint))
        StepSummary(context).plan(plan, manifest: manifest.path(in: context))
        if let out {
            try SavedPlan.write(plan, to: context.path(out))
            if !json, output.verbosity > .quiet { context.out("Saved the plan to \(out); apply it with: segsync apply \(out)\n") }
        }
        // Partitions given up on are not converged either, though apply has nothing to do.
        if detailedExitcode, plan.hasChanges || !plan.givenUp.isEmpty { throw ExitCode(ExitCodes.changes) }
    }

    /// State with in-flight operations refreshed by read-only GETs; on trouble, the state
    /// as recorded, with a warning.
    func refreshed(_ state: State, workspace: Workspace, in context: CommandContext) async -> State {
        do {
            let targets = planning.targets.isEmpty ? nil : Set(planning.targets)
            // A plan only looks: a dead endpoint is one quick warning, not minutes of retries.
            let quick: (inout FullStoryClient.Configuration) -> Void = { configuration in
                configuration.retryPolicy = RetryPolicy(maxAttempts: 2, maxTotalTime: .seconds(5))
                configuration.connectTimeout = .seconds(5)
            }
            let (fresh, warnings) = try await APIConnection.with(api: workspace.manifest.api, context: context, tune: quick) { connection in
                await Refresh.operations(in: state, client: connection.client, exports: targets, now: context.now(),
                                         manifest: workspace.manifest)
            }
            context.report(warnings)
            return fresh
        } catch {
            let message = "could not ask the API about running operations (\(error)); showing their last known state. Pass --offline to skip this."
            context.report(Diagnostic(.warning, message))
            return state
        }
    }
}
