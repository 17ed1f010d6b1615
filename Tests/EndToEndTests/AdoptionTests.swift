import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import SegSync
import Testing
import TestSupport

extension EndToEnd {
    /// A create whose answer was lost is adopted from the operations list, not exported
    /// again: the built `segsync` against the emulator process in the production dialect.
    @Suite(.serialized, .timeLimit(.minutes(10))) struct AdoptionTests {
        static let now = ApplyTests.now
        /// Three daily partitions, against the production API (which lists operations).
        static let manifest = """
            version: 1
            api: { dialect: fullstory }
            exports:
              - name: daily
                segment: everyone
                type: individuals
                window: { every: 1d, last: 3d }
            """
        static let partitions = 3

        func emulator(_ folder: TemporaryFolder, _ extra: [String] = []) async throws -> EmulatorProcess {
            try await EmulatorProcess(folder: folder, ["--dialect", "fullstory", "--operation-seconds", "0.3"] + extra)
        }

        func apply(_ folder: TemporaryFolder, _ emulator: EmulatorProcess, _ extra: [String] = []) async throws -> CLI.Result {
            try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.1"] + extra, in: folder.path, environment: emulator.environment)
        }

        /// Converged: every partition's file verified, one export made for each, and state
        /// holds exactly the ids the emulator handed out for them.
        func expectConverged(_ folder: TemporaryFolder, _ emulator: EmulatorProcess, exports: Int = partitions,
                             sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
            // A late answer is logged when the emulator sends it, whether anyone listens or not.
            #expect(await waitUntil { emulator.createsSettled }, sourceLocation: sourceLocation)
            #expect(emulator.creates == exports, "the emulator made \(emulator.creates) exports", sourceLocation: sourceLocation)
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0, sourceLocation: sourceLocation)
            let state = try await CLI.state(folder.path)
            #expect(state.partitions.values.allSatisfy { $0.phase == .downloaded && $0.intent == nil }, sourceLocation: sourceLocation)
            let kept = Set(state.partitions.values.compactMap(\.operationId))
            #expect(kept.isSubset(of: emulator.createdOperations.all), sourceLocation: sourceLocation)
        }

        /// An export another client of the same account makes (not segsync).
        static func otherClientExport(_ emulator: EmulatorProcess) async throws -> String {
            var request = URLRequest(url: URL(string: emulator.url + "/segments/v1/exports")!)
            request.httpMethod = "POST"
            request.setValue("Basic \(EmulatorProcess.key)", forHTTPHeaderField: "Authorization")
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data("""
                {"segmentId":"everyone","type":"TYPE_INDIVIDUAL","format":"FORMAT_CSV",\
                "timeRange":{"start":"2026-10-01T00:00:00Z","end":"2026-10-02T00:00:00Z"}}
                """.utf8)
            let (data, _) = try await URLSession.shared.data(for: request)
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            return try #require(object["operationId"] as? String)
        }

        /// Starts apply with the test hook holding the first create's id between its answer
        /// and its commit, does `meanwhile`, and kills it (SIGKILL) there; the id it lost.
        func killHoldingFirstId(_ folder: TemporaryFolder, _ emulator: EmulatorProcess, _ extra: [String] = [],
                                meanwhile: () async throws -> Void = {}) async throws -> String {
            let before = emulator.createdOperations.all
            let victim = try CLI.start(["apply", "--now", Self.now, "--poll-interval", "0.1"] + extra, in: folder.path,
                                       environment: emulator.environment.merging(["SEGSYNC_TEST_HOLD_ID_COMMIT": "120"]) { $1 })
            #expect(await waitUntil { emulator.creates == before.count + 1 })
            // The emulator logs an answer as it hands it over; give it time to arrive.
            try await Task.sleep(for: .milliseconds(500))
            let made = try #require(emulator.createdOperations.all.subtracting(before).first)
            try await meanwhile()
            kill(victim.process.processIdentifier, SIGKILL)
            _ = await victim.exit()
            return made
        }

        @Test("SIGKILL between a create's answer and its commit: the next run adopts the export, 0 duplicates")
        func killBetweenAnswerAndCommit() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await emulator(folder)
            let made = try await killHoldingFirstId(folder, emulator)

            let state = try await CLI.state(folder.path)
            let open = try #require(state.partitions.values.first { $0.phase == .creating })
            #expect(open.operationId == nil && open.intent != nil)
            #expect(!state.partitions.values.contains { $0.operationId == made }, "the id was never committed")
            let plan = try await CLI.run(["plan", "--offline", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(plan.stdout.contains("? adopt     daily \(open.label)   awaiting adoption: the answer to a create sent"), "\(plan.stdout)")
            #expect(plan.stdout.contains("Plan: 2 to create, 0 to resume, 0 to download, 0 to repair, 0 to replace, 0 to prune, 1 to adopt; 0 up to date."),
                    "\(plan.stdout)")
            let pending = try await CLI.run(["state", "show", "daily@\(open.label)"], in: folder.path)
            #expect(pending.stdout.contains("create answered") && pending.stdout.contains("no answer"), "\(pending.stdout)")

            let next = try await apply(folder, emulator, ["--json-events"])
            #expect(next.status == 0, "\(next.stdout)\(next.stderr)")
            #expect(next.stdout.contains("\"event\":\"adopted\"") && next.stdout.contains("\"operation_id\":\"\(made)\""), "\(next.stdout)")
            try await expectConverged(folder, emulator)
            let adopted = try await CLI.state(folder.path).partitions.values.first { $0.label == open.label }
            #expect(adopted?.operationId == made)
            #expect(adopted?.operationSource == .adopted)
            let show = try await CLI.run(["state", "show", "daily@\(open.label)"], in: folder.path)
            #expect(show.stdout.contains("FullStory's operations list (adopted"), "\(show.stdout)")
        }

        @Test("an adopted export that ends FAILED is exported again, like any other")
        func adoptedThenFailed() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            // The first export made fails; its id is the one the killed run loses.
            let emulator = try await emulator(folder, ["--rate-fail", "1", "--max-faults", "1"])
            let made = try await killHoldingFirstId(folder, emulator)
            let next = try await apply(folder, emulator, ["--json-events"])
            #expect(next.status == 0, "\(next.stdout)\(next.stderr)")
            #expect(next.stdout.contains("\"event\":\"adopted\"") && next.stdout.contains("\"operation_id\":\"\(made)\""), "\(next.stdout)")
            #expect(next.stdout.contains("\"event\":\"op-failed\""), "\(next.stdout)")
            // One more export for the failed one, and none for the lost answer.
            try await expectConverged(folder, emulator, exports: Self.partitions + 1)
            #expect(!(try await CLI.state(folder.path).partitions.values.contains { $0.operationId == made }))
        }

        enum LostAnswer: String, CaseIterable, Sendable {
            /// The connection closes after the export was made.
            case reset
            /// A 200 whose body cannot be read.
            case unreadable
            /// The answer comes after the client stopped waiting.
            case delayed
            /// Sent again after a 429's `Retry-After` (longer than the request timeout),
            /// then answered too late: the window is the last attempt's, not the first's.
            case retriedLate

            var emulatorArguments: [String] {
                switch self {
                case .reset: ["--rate-reset", "1", "--max-faults", "1", "--faults-on", "createExport"]
                case .unreadable: ["--rate-unreadable-create", "1", "--max-faults", "1"]
                case .delayed: ["--create-latency", "4", "--slow-creates", "1"]
                case .retriedLate:
                    ["--rate-429", "1", "--retry-after", "4", "--max-faults", "1", "--faults-on", "createExport",
                     "--create-latency", "4", "--slow-creates", "1"]
                }
            }

            var applyArguments: [String] { self == .delayed || self == .retriedLate ? ["--request-timeout", "1"] : [] }
        }

        @Test("each way a create's answer is lost: the same run finds its export in the operations list and converges, one export per partition",
              arguments: LostAnswer.allCases)
        func lostAnswer(_ fault: LostAnswer) async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await emulator(folder, fault.emulatorArguments)
            let run = try await apply(folder, emulator, fault.applyArguments)
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            #expect(run.stdout.contains("adopted    daily"), "\(run.stdout)")
            #expect(run.stdout.contains("after the lost request)"), "\(run.stdout)")
            #expect(run.stdout.contains("3 exports created, 1 with an unknown id. 1 adopted after a lost answer."), "\(run.stdout)")
            try await expectConverged(folder, emulator)
            #expect(try await CLI.state(folder.path).partitions.values.filter { $0.operationSource == .adopted }.count == 1)
            let again = try await apply(folder, emulator)
            #expect(again.stdout.hasPrefix("No changes"), "\(again.stdout)")
        }

        @Test("two killed runs leave lost creates whose windows overlap: neither is adopted; both are exported again and reported")
        func overlappingWindows() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest + """

                  - name: weekly
                    segment: everyone
                    type: individuals
                    window: { every: 7d, last: 7d }
                """)
            let emulator = try await emulator(folder)
            // Two runs a moment apart, each killed holding its first create's id: two
            // intents with no answer, each window the request timeout long.
            let first = try await killHoldingFirstId(folder, emulator, ["--target", "daily"])
            let second = try await killHoldingFirstId(folder, emulator, ["--target", "weekly"])
            let plan = try await CLI.run(["plan", "--offline", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(plan.stdout.contains("2 to adopt"), "\(plan.stdout)")
            let next = try await apply(folder, emulator, ["--json"])
            #expect(next.status == 0, "\(next.stdout)\(next.stderr)")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(next.stdout.utf8)) as? [String: Any])
            #expect(document["adopted"] as? Int == 0)
            let unclaimed = try #require(document["unclaimed_exports"] as? [[String: Any]])
            #expect(Set(unclaimed.compactMap { $0["operation_id"] as? String }) == [first, second])
            // Exported again: the two lost ones stay on FullStory, claimed by nothing.
            try await expectConverged(folder, emulator, exports: Self.partitions + 1 + 2)
            let records = try await CLI.state(folder.path).partitions.values
            let kept = Set(records.compactMap(\.operationId))
            #expect(!kept.contains(first) && !kept.contains(second))
            // Given up by both partitions: no later run adopts either, for any partition.
            #expect(records.filter { $0.disowned.map(Set.init) == [first, second] }.count == 2, "\(records.map(\.disowned))")
        }

        @Test("another client's export inside a lost create's window: nothing is adopted wrongly, both are reported")
        func anotherClientInTheWindow() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await emulator(folder)
            // Someone else creates an export while segsync holds its answer, then segsync dies.
            var theirs = ""
            let ours = try await killHoldingFirstId(folder, emulator) { theirs = try await Self.otherClientExport(emulator) }

            let next = try await apply(folder, emulator)
            #expect(next.status == 0, "\(next.stdout)\(next.stderr)")
            #expect(next.stdout.contains("not-adopted daily") || next.stdout.contains("not-adopted"), "\(next.stdout)")
            #expect(next.stdout.contains("2 exports on FullStory that no partition claims: "), "\(next.stdout)")
            #expect(next.stdout.contains(ours) && next.stdout.contains(theirs))
            let kept = Set(try await CLI.state(folder.path).partitions.values.compactMap(\.operationId))
            #expect(!kept.contains(theirs) && !kept.contains(ours))
            try await expectConverged(folder, emulator, exports: Self.partitions + 2)
        }

        @Test("the lost create's export is on the third page of the operations list")
        func paging() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await emulator(folder)
            // Killed holding its first id; with a 1 s request timeout, the lost create's
            // window closes 2.5 s after it was sent (1.5 s of slack).
            let lost = try await killHoldingFirstId(folder, emulator, ["--request-timeout", "1"])
            try await Task.sleep(for: .seconds(3))
            // 230 newer exports by another client push it to the third page of 100.
            for _ in 0..<230 { _ = try await Self.otherClientExport(emulator) }
            let next = try await apply(folder, emulator, ["--request-timeout", "1"])
            #expect(next.status == 0, "\(next.stdout)\(next.stderr)")
            #expect(next.stdout.contains("1 adopted after a lost answer."), "\(next.stdout)")
            #expect(!next.stdout.contains("no partition claims"), "\(next.stdout)")
            #expect(emulator.entries("listOperations").count == 3)
            #expect(try await CLI.state(folder.path).partitions.values.contains { $0.operationId == lost && $0.operationSource == .adopted })
            try await expectConverged(folder, emulator, exports: Self.partitions + 230)
        }

        @Test("the seed API lists no operations: a lost create is exported again, as before")
        func seedDialect() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest.replacingOccurrences(of: "api: { dialect: fullstory }\n", with: ""))
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.3", "--rate-unreadable-create", "1", "--max-faults", "1"])
            #expect(try await apply(folder, emulator).status == 1)
            let plan = try await CLI.run(["plan", "--offline", "--now", Self.now], in: folder.path, environment: emulator.environment)
            #expect(plan.stdout.contains("(retry; the answer to an earlier create was lost)"), "\(plan.stdout)")
            #expect(try await apply(folder, emulator).status == 0)
            #expect(emulator.creates == Self.partitions + 1)
            #expect(emulator.all("listOperations").isEmpty)
        }
    }
}
