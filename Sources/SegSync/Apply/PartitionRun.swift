import Foundation
import FullStoryContract

/// One partition's trip through apply, as a state machine: ``State`` is where it is,
/// ``next(_:)`` the one transition, and the effects it has go through the executor's
/// ``ExportService`` (create, poll, link, download) and the ``StateWriter`` (record).
///
/// Every state that waits on the API can be interrupted (the task cancelled): what was
/// recorded by then is what the next run resumes from.
struct PartitionRun: Sendable {
    /// Where a partition is.
    enum State: Sendable, Equatable {
        /// No operation to follow: one is created, unless the export is refused or this
        /// run has used up its attempts. `lastFailure` is why the previous one ended.
        case needsExport(lastFailure: String?)
        /// A create's answer was lost in an earlier run: its export is looked for in the
        /// operations list (``Adoption``) before another is created.
        case adopting
        /// An operation to poll; `delay` is the wait before the next poll without an
        /// estimate, `since` when this run began following it.
        case polling(operationId: String, delay: Duration, since: ContinuousClock.Instant)
        /// The operation finished: its file is downloaded once a download slot is free.
        case downloading(ExportOperation)
        /// Nothing more to do in this run.
        case finished(ApplyReport.Outcome)

        /// The operation a state follows, if any.
        var operationId: String? {
            switch self {
            case .polling(let id, _, _): id
            case .downloading(let operation): operation.id
            case .needsExport, .adopting, .finished: nil
            }
        }
    }

    let executor: Executor
    let writer: StateWriter
    let action: Plan.Action
    let deadline: ContinuousClock.Instant?
    let downloads: Semaphore
    /// Held from a create's intent to its answer's commit: creates go one at a time, so
    /// an intent left open by a SIGKILL has a window no other create of the run shares.
    let createGate: Semaphore
    /// What the operations list said about this partition's open intent, for `.adopt`.
    let adoption: Adoption.Outcome?
    let refused: RefusedExports
    let diskFull: DiskFull
    /// Set by the first partition that meets an error about the whole run.
    let stopRun: FirstReason
    /// Creates sent in this run; those the API accepted (with an id); those that may have
    /// made an export whose id never arrived.
    let attempts = Counter()
    let creates = Counter()
    let unknownCreates = Counter()
    /// An export found in the operations list and adopted (1), right after its create's
    /// answer was lost in this run (1).
    let adopted = Counter()
    let adoptedAtOnce = Counter()
    /// A provisional output's final export arrived (1), and its content changed (1).
    let finalized = Counter()
    let finalizedChanged = Counter()
    /// Looked up once: the manifest's export list is searched by name.
    let export: ExportSpec
    /// The run's instant (`--now`, else when the plan was made): the clock of every rule,
    /// and the time an export created in this run is recorded as made.
    let runInstant: Date

    init(executor: Executor, writer: StateWriter, action: Plan.Action, deadline: ContinuousClock.Instant?,
         downloads: Semaphore, createGate: Semaphore = Semaphore(1), adoption: Adoption.Outcome? = nil,
         refused: RefusedExports, diskFull: DiskFull, stopRun: FirstReason = FirstReason(), runInstant: Date = Date()) {
        // Whole seconds: the lockfile writes instants to the second, and must say what state does.
        self.runInstant = Date(timeIntervalSince1970: runInstant.timeIntervalSince1970.rounded(.down))
        self.executor = executor
        self.writer = writer
        self.action = action
        self.deadline = deadline
        self.downloads = downloads
        self.createGate = createGate
        self.adoption = adoption
        self.refused = refused
        self.diskFull = diskFull
        self.stopRun = stopRun
        export = executor.manifest.export(named: action.key.export)!
    }

    var partition: Partition { action.partition! }

    /// Where the plan's action starts: creates and replaces need an export; resumes,
    /// downloads and repairs follow the recorded operation.
    var initialState: State {
        if action.kind == .adopt { return .adopting }
        guard ![.create, .replace, .finalize].contains(action.kind), let id = action.operationId else { return .needsExport(lastFailure: nil) }
        return .polling(operationId: id, delay: executor.options.pollInterval, since: .now)
    }

    func emit(_ kind: ApplyEvent.Kind) {
        executor.events(ApplyEvent(key: action.key, label: action.label, kind: kind, time: executor.clock()))
    }

    /// Runs the machine from ``initialState`` to ``State/finished(_:)``. What an error
    /// does is the ``Verdict``'s to say: it stops this partition for the run (keeping a
    /// recorded operation), or the whole run (a rejected key); never the other partitions.
    func execute() async -> ApplyReport.Outcome {
        var state = initialState
        do {
            while true {
                if case .finished(let outcome) = state { return outcome }
                state = try await next(state)
            }
        } catch where Task.isCancelled {
            // Interrupted (Ctrl-C, or another partition stopped the run): whatever was
            // recorded is resumed by the next run.
            return .stillRunning
        } catch {
            return await stop(at: state, by: error)
        }
    }

    /// Ends this partition's run after `error`, as its ``Verdict`` says.
    func stop(at state: State, by error: any Error) async -> ApplyReport.Outcome {
        let message = (error as? FullStoryAPIError)?.description ?? "\(error)"
        switch Verdict.on(error, operationId: state.operationId) {
        case .stopRun:
            // Said once, for the run; the record (if any) keeps its operation.
            stopRun.set(message)
            if state.operationId != nil { _ = await fail(message, keepOperation: true, announce: false) }
            return .stillRunning
        case .keep, .exportAgain:
            // `.exportAgain` was turned into a new export by ``next(_:)``; it reaches here
            // only when that could not happen, and then too the record stays as it is.
            return await fail(message, keepOperation: true)
        case .fail:
            if let failure = error as? FullStoryAPIError,
               let sentence = refused.record(failure, export: export.name, dialect: executor.manifest.api.dialect) {
                return await fail(sentence, keepOperation: false)
            }
            return await fail(message, keepOperation: false)
        }
    }

    /// The transition: does what `state` calls for and returns the state it leads to. An
    /// operation the server no longer has (``Verdict/exportAgain``) leads to a new export.
    func next(_ state: State) async throws -> State {
        do {
            return try await transition(state)
        } catch where !Task.isCancelled && Verdict.on(error, operationId: state.operationId) == .exportAgain {
            return lost(state.operationId!, because: (error as? ResultsExpired)?.description)
        }
    }

    private func transition(_ state: State) async throws -> State {
        switch state {
        case .needsExport(let lastFailure):
            if let reason = refused.reason(for: export.name) {
                return .finished(.failed(reason))  // said once, for the export, in the summary
            }
            if attempts.value >= executor.options.maxAttempts {
                let message = "gave up after \(attempts.value) export\(attempts.value == 1 ? "" : "s") in this run: \(lastFailure ?? "unknown error")"
                try await writer.update(action.key, .committed) { $0?.phase = .failed; $0?.lastError = message }
                return .finished(.failed(message))
            }
            return .polling(operationId: try await create(), delay: executor.options.pollInterval, since: .now)
        case .adopting:
            return try await adopt(adoption ?? .notFound)
        case .polling(let id, let delay, let since):
            return try await poll(id, delay: delay, since: since)
        case .downloading(let operation):
            try await downloads.wait()
            let detail: String
            do {
                detail = try await download(operation)
            } catch {
                await downloads.signal()
                throw error
            }
            await downloads.signal()
            return .finished(.done(detail))
        case .finished:
            return state
        }
    }

    /// The API has forgotten the operation (or its results expired): a new export is needed.
    func lost(_ id: String, because reason: String? = nil) -> State {
        emit(.lost(operationId: id))
        return .needsExport(lastFailure: reason ?? "the API no longer knows operation \(id)")
    }

    /// Records a failure. While an operation is still valid the record keeps it, so the
    /// next run resumes instead of exporting again.
    func fail(_ message: String, keepOperation: Bool, announce: Bool = true) async -> ApplyReport.Outcome {
        let now = executor.clock()
        do {
            try await writer.update(action.key, .committed) { record in
                record?.lastError = message
                record?.updatedAt = now
                // An open intent stays: the next run looks for its export.
                if !keepOperation, record?.phase != .creating { record?.phase = .failed }
            }
        } catch {
            // A full disk must not hide the failure: both reach the user.
            let both = "\(message) Recording this failure in state failed too: \(error)"
            emit(.failed(message: both))
            return .failed(both)
        }
        if announce { emit(.failed(message: message)) }
        return .failed(message)
    }

    /// Creates an export and puts its operation id on disk before anything else.
    ///
    /// Its intent is committed first (``CreateIntent``: sent now, within the request
    /// timeout), so a create whose answer never reaches state is looked for by the next
    /// run instead of exported again. Creates go one at a time through the create gate.
    func create() async throws -> String {
        let request = ExportRequest(partition: partition, export: export)
        try await createGate.wait()
        do {
            let id = try await createHoldingGate(request)
            await createGate.signal()
            return id
        } catch {
            await createGate.signal()
            throw error
        }
    }

    private func createHoldingGate(_ request: ExportRequest) async throws -> String {
        let client = executor.client
        let (seconds, attoseconds) = client.createTimeout.components
        let timeout = Double(seconds) + Double(attoseconds) / 1e18
        let parameters = ExportParameters(export, in: executor.manifest)
        let partition = self.partition, runInstant = self.runInstant, key = action.key, writer = self.writer, clock = executor.clock
        let sends = Counter()
        let id: String
        do {
            attempts.increment()
            // The intent is committed right before each attempt leaves (after the rate
            // limiter's and any retry's wait): an attempt is retried only when the server
            // surely made nothing, so the window is the last attempt's.
            id = try await client.createExport(request, beforeSending: {
                let intent = CreateIntent(sentAt: clock(), timeout: timeout, clockOffset: client.serverClockOffset)
                let first = sends.value == 0
                // An intent that could not be committed is not left in memory either: the
                // create is not sent, and no later commit may record it as sent.
                try await writer.commitOrRestore(key) { record in
                    guard first else { record?.intent = intent; return }
                    var updated = PartitionRecord(partition: partition, parameters: parameters, phase: .creating, now: intent.sentAt)
                    updated.createdAt = record?.createdAt ?? intent.sentAt
                    // The create counts from here: its export may exist whatever happens next.
                    updated.attempts = (record?.attempts ?? 0) + 1
                    updated.intent = intent
                    updated.requestedAt = runInstant
                    updated.output = record?.output  // the old file stays recorded until its successor lands
                    updated.disowned = record?.disowned
                    record = updated
                }
                sends.increment()
            }).id
            creates.increment()
        } catch let failure as FullStoryAPIError {
            // Nothing was sent (and no intent committed): nothing to record but the error.
            guard sends.value > 0 else { throw failure }
            try await recordCreateFailure(failure)
            if case .createOutcomeUnknown = failure, let adopted = try await adoptAtOnce() {
                adoptedAtOnce.increment()
                return adopted
            }
            throw failure
        }
        if let hold = executor.options.holdBeforeIdCommit { try? await Task.sleep(for: hold) }
        let now = executor.clock()
        try await writer.update(action.key, .committed) { record in
            record?.phase = .requested
            record?.operationId = id
            record?.operationSource = .created
            record?.intent = nil
            record?.updatedAt = now
        }
        emit(.created(operationId: id, type: export.type, format: export.format))
        return id
    }

    /// A create that failed: one whose export may exist keeps its intent (answered when an
    /// answer came), for the next run to look for; one the server surely did not make
    /// (refused, never sent) ends the intent and does not count.
    func recordCreateFailure(_ failure: FullStoryAPIError) async throws {
        let now = executor.clock()
        let (maybeMade, answered): (Bool, Bool) =
            if case .createOutcomeUnknown(_, let hadAnswer) = failure { (true, hadAnswer) } else { (false, false) }
        if maybeMade { unknownCreates.increment() }
        try await writer.update(action.key, .committed) { record in
            guard var updated = record else { return }
            if maybeMade {
                if answered { updated.intent?.answeredAt = now }
            } else {
                updated.phase = .failed
                updated.intent = nil
                updated.attempts = max(0, updated.attempts - 1)
            }
            updated.lastError = failure.description
            updated.updatedAt = now
            record = updated
        }
    }

    /// Right after a create's answer was lost, with the create gate still held (no other
    /// create is in flight, so every open intent's window is settled), the operations
    /// list is read once: an export matched one to one is adopted and followed in this
    /// run. Anything else (nothing there yet, an ambiguous match, no list) leaves the
    /// intent for the next run, which reads the list again with every window complete.
    func adoptAtOnce() async throws -> String? {
        guard executor.manifest.api.dialect == .fullstory else { return nil }
        let client = executor.client
        let intents = await writer.openIntents(measuredOffset: client.serverClockOffset)
        let result = await Adoption.resolve(intents.filter { $0.key == action.key }, others: intents.filter { $0.key != action.key },
                                            client: client, store: writer.store)
        guard case .adopted(let operation, let lag)? = result.outcomes[action.key] else { return nil }
        try await recordAdoption(operation, lag: lag)
        return operation.id
    }

    /// Commits an adopted export's id in place of the intent, and says so.
    func recordAdoption(_ operation: ExportOperation, lag: Double) async throws {
        let now = executor.clock()
        try await writer.update(action.key, .committed) { record in
            record?.phase = .requested
            record?.operationId = operation.id
            record?.operationSource = .adopted
            record?.intent = nil
            record?.operationState = nil
            record?.progress = nil
            record?.lastError = nil
            record?.updatedAt = now
        }
        adopted.increment()
        emit(.adopted(operationId: operation.id, lag: lag))
    }

    /// Follows what the operations list said about this partition's lost create: an
    /// adopted export is polled like any other (a FAILED one then exported again);
    /// otherwise another is created, or, when the list could not be read, nothing is,
    /// and the intent waits for the next run.
    func adopt(_ outcome: Adoption.Outcome) async throws -> State {
        switch outcome {
        case .adopted(let operation, let lag):
            try await recordAdoption(operation, lag: lag)
            return .polling(operationId: operation.id, delay: executor.options.pollInterval, since: .now)
        case .notFound:
            emit(.notAdopted(reason: "no export on FullStory was created while its lost create was in flight; exporting it"))
        case .ambiguous(let candidates):
            // Exported again, this partition gives the candidates up: they may be another
            // partition's or workspace's, and none may adopt them later either, when the
            // windows that made them ambiguous have closed.
            let now = executor.clock()
            try await writer.update(action.key, .committed) { record in
                let kept = record?.disowned ?? []
                record?.disowned = Adoption.disowned(kept, adding: candidates)
                record?.updatedAt = now
            }
            emit(.notAdopted(reason: "\(candidates.count) export\(candidates.count == 1 ? "" : "s") on FullStory could be its lost create's, so none is adopted; exporting it again"))
        case .unsupported(let why):
            emit(.notAdopted(reason: "\(why); exporting it again"))
        case .unavailable(let reason):
            throw SegSyncError("\(reason); its lost create is looked for again by the next run.")
        }
        return .needsExport(lastFailure: nil)
    }

    /// One poll: records what the API says, then waits (timed from the operation's own
    /// estimate) unless it finished, failed, or the run's `--max-wait` is up.
    func poll(_ id: String, delay: Duration, since: ContinuousClock.Instant) async throws -> State {
        // Creates go first: while one is waiting to be sent, polls (which would find the
        // newest exports still running, and take the rate limiter's calls) wait.
        await createGate.idle()
        let status = try await executor.client.getOperation(id)
        let now = executor.clock()
        try Verdict.checkResults(of: status, now: now)
        let phase: Phase = status.state == .completed ? .completed : .running
        try await writer.update(action.key, phase == .completed ? .committed : .memory) { record in
            record?.operationId = id
            record?.phase = phase
            record?.operationState = status.state.rawValue
            record?.progress = status.estimatePctComplete
            record?.updatedAt = now
        }
        emit(.polled(operationId: id, state: status.state.rawValue, percent: status.estimatePctComplete))
        switch status.state {
        case .completed:
            return .downloading(status)
        case .failed:
            let message = status.errorDetails ?? "no details given"
            emit(.operationFailed(operationId: id, message: message))
            let failedAt = executor.clock()
            try await writer.update(action.key, .committed) { $0?.phase = .failed; $0?.lastError = message; $0?.updatedAt = failedAt }
            return .needsExport(lastFailure: "the export failed: \(message)")
        case .pending, .running, .unknown:
            var wait = delay
            // With a progress estimate, sleep about half the remaining time.
            if let progress = status.estimatePctComplete, progress > 1, progress < 100 {
                let remaining = (ContinuousClock.now - since) * ((100 - progress) / progress)
                wait = max(executor.options.pollInterval, min(executor.options.maxPollInterval, remaining / 2))
            }
            if let deadline {
                let left = deadline - ContinuousClock.now
                if left <= .zero {
                    emit(.waiting(operationId: id))
                    return .finished(.stillRunning)
                }
                wait = min(wait, left)
            }
            try await Task.sleep(for: wait)
            return .polling(operationId: id, delay: min(delay * 1.5, executor.options.maxPollInterval), since: since)
        }
    }

    /// Downloads a completed operation's file into place and records it.
    ///
    /// An export made before `end + final` is provisional: its content's digest is kept,
    /// and when the final export (made after) arrives its content is compared with it.
    /// Unchanged, the file stays as it is and the record only becomes final; changed, the
    /// file is replaced as any other.
    /// What a finished download's outcome says: downloaded, or finalized (changed or not).
    static let finalizedPrefix = "finalized"
    static let finalizedChanged = "finalized: changed"
    static let finalizedUnchanged = "finalized: unchanged"

    func download(_ completed: ExportOperation) async throws -> String {
        // Once the disk is full, the other downloads are not started: they would fail the
        // same way. Their operations stay recorded, for the next run to download.
        if let folder = diskFull.folder { throw FullStoryAPIError.diskFull(folder: folder) }
        let relative = Layout.relativePath(for: partition, export: export)
        let previous = await writer.output(of: action.key)
        // When this operation was made; one recorded before segsync kept the time counts
        // as made now (it is final, as every export was then).
        let exported = await writer.requestedAt(of: action.key) ?? runInstant
        let provisional = Planner.isProvisional(exported: exported, end: partition.end, window: export.window, calendar: export.calendar)
        // The provisional output this export finalizes: at the same path, from another export.
        let finalizing: OutputRecord? =
            if let previous, !provisional, previous.path == relative, Lockfile.Provisional(previous) != nil, previous.exportedAt != exported {
                previous
            } else {
                nil
            }
        var decide: (@Sendable (DownloadResult) async throws -> Bool)?
        if let earlier = finalizing?.contentSHA256 {
            let writer = self.writer
            decide = { result in
                guard result.contentSHA256 != earlier else { return false }
                try await writer.withdraw(paths: [relative])  // the old file leaves the lockfile before it is replaced
                return true
            }
        }
        if finalizing == nil { try await writer.withdraw(paths: [relative]) }
        let digestContent = provisional || finalizing != nil
        let written = try await executor.output.put(relative, replacing: previous, operationId: completed.id, decide: decide) { target in
            try await fetch(completed, to: target, digestContent: digestContent)
        }
        // Unchanged: the provisional file is the final one.
        var output = written ?? finalizing!
        let lines = output.contentLines
        output.exportedAt = exported
        if !provisional {
            output.contentSHA256 = nil
            output.contentLines = nil
        }
        let entry = Lockfile.Entry(
            path: relative, sha256: output.sha256, bytes: output.bytes, export: export.name, segment: export.segment,
            type: export.type, format: export.format, start: partition.start, end: partition.end,
            fingerprint: partition.fingerprint, source: executor.manifest.api.endpoint, etag: output.identity,
            provisional: Lockfile.Provisional(output))
        // A replaced partition's old file (another format, say) goes once the new one is in place.
        for stale in try await writer.recordOutput(action.key, entry: entry, output: output, now: executor.clock()) {
            try? await executor.output.delete(stale)
        }
        guard let finalizing else {
            emit(.downloaded(path: relative, bytes: output.bytes, sha256: output.sha256))
            return "downloaded"
        }
        finalized.increment()
        if written != nil { finalizedChanged.increment() }
        emit(.finalized(path: relative, changed: written != nil, sha256: output.sha256,
                        before: .init(bytes: finalizing.bytes, lines: finalizing.contentLines),
                        after: .init(bytes: output.bytes, lines: lines)))
        return written != nil ? Self.finalizedChanged : Self.finalizedUnchanged
    }

    /// The file of a completed operation, into `target`; an expired link is fetched again
    /// (from a fresh look at the operation) up to ``Executor/Options/maxLinkRefreshes`` times.
    func fetch(_ completed: ExportOperation, to target: DownloadTarget, digestContent: Bool) async throws -> DownloadResult {
        var status = completed
        for refresh in 0...executor.options.maxLinkRefreshes {
            let link = try await executor.client.downloadLink(for: status)
            emit(.downloading(bytes: 0, total: nil))
            let progress: @Sendable (Int64, Int64?) -> Void = { bytes, total in emit(.downloading(bytes: bytes, total: total)) }
            do {
                switch target {
                case .file(let path):
                    return try await executor.client.download(link.url, to: path, decompress: export.decompress,
                                                              digestContent: digestContent, progress: progress)
                case .stream(let stream):
                    return try await executor.client.download(link.url, into: stream, decompress: export.decompress,
                                                              digestContent: digestContent, progress: progress)
                }
            } catch FullStoryAPIError.diskFull {
                diskFull.record(executor.layout.outputDirectory)
                throw FullStoryAPIError.diskFull(folder: executor.layout.outputDirectory)
            } catch FullStoryAPIError.expiredDownloadLink(let url) {
                guard refresh < executor.options.maxLinkRefreshes else { throw FullStoryAPIError.expiredDownloadLink(url: url) }
                emit(.relinking)
                status = try await executor.client.getOperation(completed.id)
                try Verdict.checkResults(of: status, now: executor.clock())
            }
        }
        throw SegSyncError("no download happened.")
    }
}
