import Foundation
import SegSync
import Testing
import TestSupport

extension EndToEnd {
    /// The crash suite: the built `segsync` against a faulty emulator, killed (SIGKILL) or
    /// interrupted (SIGINT) at seeded random instants — during creates, polls, link fetches,
    /// downloads, renames and state writes alike — then applied until it converges.
    ///
    /// `SEGSYNC_CRASH_ROUNDS` (default 3 per signal) sets the count for a long run and
    /// `SEGSYNC_CRASH_SEED` the seed; each round prints its instant, so a failure reproduces.
    @Suite(.serialized) struct CrashTests {
        static let environment = ProcessInfo.processInfo.environment
        static let rounds = Int(environment["SEGSYNC_CRASH_ROUNDS"] ?? "") ?? 3
        static let seed = UInt64(environment["SEGSYNC_CRASH_SEED"] ?? "") ?? 20_261_201
        /// The production dialect: its operations list is where a create whose id was lost
        /// to the signal is found again (``Adoption``).
        static let manifest = """
            version: 1
            api: { dialect: fullstory }
            exports:
              - name: hourly-events
                segment: checkout_abandoners
                type: events
                format: csv
                window: { every: 6h, last: 1d, settle: 2h }
              - name: daily-people
                segment: everyone
                type: individuals
                decompress: true
                window: { every: 1d, last: 4d }
            """
        static let partitions = 8
        /// Every fault the emulator has except those that lose a create's answer (a reset
        /// after the request, an unreadable answer: `AdoptionTests` has them, one at a
        /// time, since two in a row cannot be told apart and are exported again by design).
        static let faults = [
            "--dialect", "fullstory", "--operation-seconds", "0.4", "--rate-429", "0.1", "--rate-5xx", "0.1", "--server-error-status", "503",
            "--retry-after", "0", "--rate-drop", "0.2", "--rate-truncate", "0.1", "--rate-expired-link", "0.2",
            "--rate-fail", "0.1", "--rows-per-hour", "400",
        ]

        struct Round: CustomStringConvertible {
            var round: Int
            var instant: Int
            var exitStatus: Int32
            var creates: Int
            var failedExports: Int
            /// Exports the emulator made before the signal's run ended whose ids state did
            /// not hold afterwards: answered in the window between a create's answer and
            /// its commit. The next run adopts each from the operations list.
            var lostIds: Int
            var runsToConverge: Int
            var duplicates: Int { creates - CrashTests.partitions - failedExports }
            var description: String {
                "round \(round): signal at \(instant) ms (exit \(exitStatus)), \(creates) creates for \(CrashTests.partitions) partitions, "
                    + "\(failedExports) FAILED exports, \(lostIds) ids lost in the answer-to-commit window and adopted, \(duplicates) duplicates, "
                    + "converged after \(runsToConverge) more run(s)"
            }
        }

        @Test("killed or interrupted at any instant, apply converges: files verified, no leftovers, no key, no duplicate export",
              arguments: [SIGINT, SIGKILL], ["sqlite", "postgres"])
        func crashAndConverge(signal: Int32, engine: String) async throws {
            var database: String?
            if engine == "postgres" {
                guard let url = TestDatabase.urlOrSkip("crash suite on PostgreSQL") else { return }
                database = url
            }
            var random = SplitMix(seed: Self.seed ^ UInt64(signal))
            var rounds: [Round] = []
            for round in 0..<Self.rounds {
                let instant = Int(random.next() % 2_500)
                let result = try await run(round: round, signal: signal, instant: instant, emulatorSeed: random.next(), database: database)
                print("crash suite (\(signal == SIGKILL ? "SIGKILL" : "SIGINT"), \(engine)): \(result)")
                rounds.append(result)
                if signal == SIGINT {
                    #expect(result.lostIds == 0, "an interrupt must keep every id the server handed out: \(result)")
                }
                // Even an id lost between a create's answer and its commit costs nothing: the
                // next run finds its export in the operations list.
                #expect(result.duplicates == 0, "\(result)")
            }
            let duplicates = rounds.reduce(0) { $0 + $1.duplicates }
            print("crash suite (\(signal == SIGKILL ? "SIGKILL" : "SIGINT"), \(engine)): \(rounds.count) rounds, seed \(Self.seed), \(duplicates) duplicate export(s) in all")
        }

        /// One round; with `database`, state lives in a PostgreSQL workspace of its own.
        func run(round: Int, signal: Int32, instant: Int, emulatorSeed: UInt64, database: String?) async throws -> Round {
            let folder = try TemporaryFolder()
            let workspace = TestDatabase.uniqueWorkspace("crash")
            try folder.write("segsync.yaml", database == nil ? Self.manifest : Self.manifest.replacingOccurrences(
                of: "version: 1\n", with: "version: 1\nstate: { backend: postgres, workspace: \(workspace) }\n"))
            let emulator = try await EmulatorProcess(folder: folder, Self.faults, seed: emulatorSeed)
            let environment = emulator.environment.merging(database.map { ["SEGSYNC_DATABASE_URL": $0] } ?? [:]) { $1 }
            let now = ApplyTests.now
            let victim = try CLI.start(["apply", "--now", now, "--poll-interval", "0.1"], in: folder.path, environment: environment)
            let drain = CLI.Drain(victim.stdout.fileHandleForReading), drainErrors = CLI.Drain(victim.stderr.fileHandleForReading)
            try await Task.sleep(for: .seconds(Double(instant) / 1000))
            kill(victim.process.processIdentifier, signal)
            _ = await victim.exit()
            _ = (await drain.end(), await drainErrors.end())
            let exitStatus = victim.process.terminationStatus
            // What the killed run made durable, against what the server made and was asked,
            // once every create the server received is answered (one may still be in hand
            // when the signal strikes).
            #expect(await waitUntil { emulator.createsSettled }, "round \(round): a create the emulator received was never answered")
            let state = try? await CLI.state(folder.path, environment: environment)  // none yet, when killed that early
            let kept = Set(state?.partitions.values.compactMap(\.operationId) ?? [])
            let made = emulator.createdOperations
            let polled = emulator.polledOperations
            // An export that ended FAILED is replaced in state by its successor: seen by a
            // poll, it was durable then, and is not lost.
            let superseded = polled.intersection(made.failing)
            let lost = made.all.subtracting(kept).subtracting(superseded)
            #expect(polled.isSubset(of: kept.union(superseded)),
                    "round \(round): polled before its id was durable: \(polled.subtracting(kept).subtracting(superseded))")

            var runs = 0
            var last = CLI.Result(status: -1, stdout: "", stderr: "")
            while runs < 8 {
                runs += 1
                last = try await CLI.run(["apply", "--now", now, "--poll-interval", "0.1", "--retry-failed"], in: folder.path,
                                   environment: environment)
                if last.status == 0 { break }
            }
            #expect(last.status == 0, "round \(round) (signal at \(instant) ms) did not converge: \(last.stdout)\(last.stderr)")

            // Every file verified, by segsync and by sha256sum.
            #expect(try await CLI.run(["verify"], in: folder.path, environment: environment).status == 0)
            #expect(try await CLI.system("/usr/bin/env", ["sha256sum", "--quiet", "--strict", "-c", "SHA256SUMS"], in: folder.path + "/exports") == 0)
            #expect(try Lockfile.load(path: folder.path + "/segsync.lock").entries.count == Self.partitions)

            // No leftovers of interrupted writes, and the key nowhere in what segsync wrote.
            for relative in ["exports", ".segsync"] {
                let base = folder.path + "/" + relative
                for path in FileManager.default.enumerator(atPath: base)?.compactMap({ $0 as? String }) ?? [] {
                    #expect(!path.hasSuffix(".partial") && !AtomicFile.isTemporary(path), "leftover \(relative)/\(path)")
                    let contents = (try? Data(contentsOf: URL(fileURLWithPath: base + "/" + path))) ?? Data()
                    #expect(contents.range(of: Data(EmulatorProcess.key.utf8)) == nil, "the API key is in \(relative)/\(path)")
                }
            }
            let lockfile = try #require(folder.read("segsync.lock"))
            #expect(!lockfile.contains(EmulatorProcess.key))
            let pulled = try await CLI.run(["state", "pull"], in: folder.path, environment: environment)
            #expect(pulled.status == 0 && !pulled.stdout.contains(EmulatorProcess.key))

            // FAILED exports cost a re-export by design, adopted ones too.
            let failed = emulator.createdOperations.failing.count
            return Round(round: round, instant: instant, exitStatus: exitStatus, creates: emulator.creates,
                         failedExports: failed, lostIds: lost.count, runsToConverge: runs)
        }
    }
}

/// A small seeded generator, so every round's instant reproduces from the seed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
