import Foundation
import SegSync
import Testing
import TestSupport

extension EndToEnd {
    /// Runners sharing one PostgreSQL workspace: the built `segsync` in two folders with
    /// the same manifest, against one emulator and the test server (`TestDatabase`).
    @Suite(.serialized, .timeLimit(.minutes(5))) struct PostgresTests {
        static let now = ApplyTests.now

        /// ApplyTests' manifest with its state in `workspace`.
        static func manifest(workspace: String) -> String {
            ApplyTests.manifest.replacingOccurrences(
                of: "version: 1\n", with: "version: 1\nstate:\n  backend: postgres\n  workspace: \(workspace)\n")
        }

        struct Runners {
            let url: String
            let workspace = TestDatabase.uniqueWorkspace("e2e")
            let a: TemporaryFolder
            let b: TemporaryFolder
            let emulator: EmulatorProcess

            init(url: String, operationSeconds: Double) async throws {
                self.url = url
                a = try TemporaryFolder()
                b = try TemporaryFolder()
                for folder in [a, b] { try folder.write("segsync.yaml", PostgresTests.manifest(workspace: workspace)) }
                emulator = try await EmulatorProcess(folder: a, ["--operation-seconds", String(operationSeconds)])
            }

            var environment: [String: String] { emulator.environment.merging(["SEGSYNC_DATABASE_URL": url]) { $1 } }

            func arguments(_ extra: [String] = []) -> [String] {
                ["apply", "--now", PostgresTests.now, "--poll-interval", "0.1"] + extra
            }

            func start(_ folder: TemporaryFolder, _ extra: [String] = []) async throws -> CLI.Running {
                try CLI.start(arguments(extra), in: folder.path, environment: environment)
            }

            func run(_ folder: TemporaryFolder, _ extra: [String] = []) async throws -> CLI.Result {
                try await CLI.run(arguments(extra), in: folder.path, environment: environment)
            }

            func sql(_ text: String) -> String {
                (try? TestDatabase.psql(text, url: url)) ?? ""
            }

            /// Operation ids committed in the workspace.
            var recordedOperations: Int {
                Int(sql("SELECT count(*) FROM segsync_partitions WHERE workspace = '\(workspace)' AND operation_id IS NOT NULL")) ?? 0
            }
        }

        @Test("two runners, one workspace: the second fails at once naming the holder, or waits, then downloads with 0 new creates")
        func twoRunners() async throws {
            guard let url = TestDatabase.urlOrSkip("twoRunners") else { return }
            // Operations long enough that the first runner still holds the lock when the
            // second starts, however loaded the machine is (8 s was not always enough with
            // the whole suite running on 2 cores).
            let runners = try await Runners(url: url, operationSeconds: 20)
            let first = try await runners.start(runners.a)
            #expect(await waitUntil { runners.recordedOperations == 7 })

            let refused = try await runners.run(runners.b)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("another segsync run has the lock on the PostgreSQL state (workspace '\(runners.workspace)' at postgres://"), "\(refused.stderr)")
            #expect(refused.stderr.contains("held by pid \(first.process.processIdentifier) on "), "\(refused.stderr)")
            #expect(refused.stderr.contains(", 'segsync apply', started "))

            let waiting = try await runners.start(runners.b, ["--lock-timeout", "5m"])
            let firstResult = await first.result()
            #expect(firstResult.status == 0, "\(firstResult.stdout)\(firstResult.stderr)")
            let second = await waiting.result()
            #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
            // The second folder has no files: they come from the finished operations.
            #expect(second.stdout.contains("Plan: 0 to create, 0 to resume, 0 to download, 7 to repair"), "\(second.stdout)")
            #expect(runners.emulator.creates == 7)
            #expect(try await CLI.run(["verify"], in: runners.b.path, environment: runners.environment).status == 0)
            #expect(runners.b.read("segsync.lock") == runners.a.read("segsync.lock"))
        }

        @Test("SIGKILL of the runner holding the lock lets the waiting one go on within seconds, resuming its operations")
        func killedHolder() async throws {
            guard let url = TestDatabase.urlOrSkip("killedHolder") else { return }
            let runners = try await Runners(url: url, operationSeconds: 3)
            let first = try await runners.start(runners.a)
            #expect(await waitUntil { runners.recordedOperations == 7 })
            let waiting = try await runners.start(runners.b, ["--lock-timeout", "5m"])
            let out = CLI.Drain(waiting.stdout.fileHandleForReading), err = CLI.Drain(waiting.stderr.fileHandleForReading)
            #expect(await waitUntil { err.text.contains("note: waiting up to 5m for the lock on the PostgreSQL state") })
            #expect(err.text.contains("held by pid \(first.process.processIdentifier) on "))
            #expect(waiting.process.isRunning)
            kill(first.process.processIdentifier, SIGKILL)
            _ = await first.exit()
            let killed = Date()
            // It takes the lock as soon as the server drops the dead connection.
            #expect(await waitUntil(timeout: 20) {
                runners.sql("SELECT pid FROM segsync_lock_holders WHERE workspace = '\(runners.workspace)'") == String(waiting.process.processIdentifier)
            })
            let tookOver = Date().timeIntervalSince(killed)
            print("postgres: the waiting runner took the lock \(String(format: "%.2f", tookOver)) s after SIGKILL of the holder")
            #expect(tookOver < 10)
            _ = await waiting.exit()
            let stdout = String(decoding: await out.end(), as: UTF8.self)
            let errors = String(decoding: await err.end(), as: UTF8.self)
            #expect(waiting.process.terminationStatus == 0, "\(stdout)\(errors)")
            // Every operation is taken over: resumed, or downloaded when it finished while
            // the lock changed hands (a loaded machine); none is exported again.
            #expect(!stdout.contains("+ create"), "\(stdout)")
            let counts = ["to resume", "to download"].map { phrase in
                stdout.components(separatedBy: "\n").first { $0.hasPrefix("Plan:") }
                    .flatMap { line in line.prefix { $0 != ";" && $0 != "." }.components(separatedBy: ", ").first { $0.contains(phrase) } }
                    .flatMap { Int($0.filter(\.isNumber)) } ?? 0
            }
            #expect(counts.reduce(0, +) == 7, "\(stdout)")
            #expect(runners.emulator.creates == 7)
        }

        @Test("a terminated connection stops the apply at once with a clear error; the next run resumes every operation by id")
        func terminatedConnection() async throws {
            guard let url = TestDatabase.urlOrSkip("terminatedConnection") else { return }
            let runners = try await Runners(url: url, operationSeconds: 4)
            let first = try await runners.start(runners.a)
            #expect(await waitUntil { runners.recordedOperations == 7 })
            _ = runners.sql("SELECT pg_terminate_backend(backend_pid) FROM segsync_lock_holders WHERE workspace = '\(runners.workspace)'")
            let stopped = Date()
            let result = await first.result()
            #expect(Date().timeIntervalSince(stopped) < 10)
            #expect(result.status == 1)
            #expect(result.stderr.contains("the connection to the PostgreSQL state (workspace '\(runners.workspace)'"), "\(result.stderr)")
            #expect(result.stderr.contains("was lost, and the run lock with it; this run stops here and writes nothing more"), "\(result.stderr)")
            // Nothing was written after the lock went: no file, no lockfile entry.
            #expect(runners.a.list("exports").filter { $0.hasSuffix(".gz") || $0.hasSuffix(".json") }.isEmpty)

            let next = try await runners.run(runners.a)
            #expect(next.status == 0, "\(next.stdout)\(next.stderr)")
            #expect(next.stdout.contains("7 to resume"), "\(next.stdout)")
            #expect(runners.emulator.creates == 7)
            #expect(try await CLI.run(["verify"], in: runners.a.path, environment: runners.environment).status == 0)
        }

        @Test("a state server that stops answering ends an interrupted apply within SEGSYNC_STATE_TIMEOUT; the next run resumes every id")
        func silentServerInterrupted() async throws {
            guard let url = TestDatabase.urlOrSkip("silentServerInterrupted") else { return }
            let runners = try await Runners(url: url, operationSeconds: 30)
            let environment = runners.environment.merging(["SEGSYNC_STATE_TIMEOUT": "3s"]) { $1 }
            let first = try CLI.start(runners.arguments(), in: runners.a.path, environment: environment)
            #expect(await waitUntil { runners.recordedOperations == 7 })
            let backend = try #require(Int32(runners.sql("SELECT backend_pid FROM segsync_lock_holders WHERE workspace = '\(runners.workspace)'")))
            #expect(kill(backend, SIGSTOP) == 0)
            defer { kill(backend, SIGCONT) }
            // Ctrl-C: the run winds down, and its last commit meets a server that never answers.
            kill(first.process.processIdentifier, SIGINT)
            let interrupted = Date()
            let result = await first.result()
            let took = Date().timeIntervalSince(interrupted)
            kill(backend, SIGCONT)
            #expect(took < 15, "apply took \(took) s to end after Ctrl-C with its state server silent")
            #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
            #expect(result.stderr.contains("did not answer within 3s (SEGSYNC_STATE_TIMEOUT)"), "\(result.stderr)")

            let next = try await CLI.run(runners.arguments(["--max-wait", "0"]), in: runners.a.path, environment: runners.environment)
            #expect(next.stdout.contains("7 to resume"), "\(next.stdout)\(next.stderr)")
            #expect(runners.emulator.creates == 7)
        }

        @Test("state pull from SQLite and push into PostgreSQL moves a folder's state, and the plan agrees")
        func migrate() async throws {
            guard let url = TestDatabase.urlOrSkip("migrate") else { return }
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", ApplyTests.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2"])
            #expect(try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.1"], in: folder.path, environment: emulator.environment).status == 0)
            let pulled = try await CLI.run(["state", "pull"], in: folder.path)
            try folder.write("pulled.json", pulled.stdout)
            let workspace = TestDatabase.uniqueWorkspace("mig")
            try folder.write("segsync.yaml", Self.manifest(workspace: workspace))
            let environment = emulator.environment.merging(["SEGSYNC_DATABASE_URL": url]) { $1 }
            let pushed = try await CLI.run(["state", "push", "pulled.json"], in: folder.path, environment: environment)
            #expect(pushed.status == 0, "\(pushed.stderr)")
            #expect(try await CLI.run(["state", "pull"], in: folder.path, environment: environment).stdout == pulled.stdout)
            let plan = try await CLI.run(["plan", "--now", Self.now], in: folder.path, environment: environment)
            #expect(plan.stdout == "No changes: 7 partitions up to date.\n", "\(plan.stdout)\(plan.stderr)")
            // A state of another lineage is not pushed over it without --force.
            var other = try StateJSON.decodeState(Data(pulled.stdout.utf8), source: "pull")
            other.lineage = "another"
            try folder.write("other.json", String(decoding: try StateJSON.encoder.encode(other), as: UTF8.self))
            let refused = try await CLI.run(["state", "push", "other.json"], in: folder.path, environment: environment)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("belongs to another state (lineage another)"))
        }
    
        @Test("a role that may only connect and read runs status and state list on a shared workspace; a database without state is no state yet")
        func readOnlyRole() async throws {
            guard let url = TestDatabase.urlOrSkip("readOnlyRole") else { return }
            let folder = try TemporaryFolder()
            let workspace = TestDatabase.uniqueWorkspace("ro")
            try folder.write("segsync.yaml", Self.manifest(workspace: workspace))
            // The state, pushed by a role that may write.
            let state = State(lineage: "l-ro", serial: 3, partitions: [:])
            try folder.write("state.json", String(decoding: try StateJSON.encoder.encode(state), as: UTF8.self))
            let pushed = try await CLI.run(["state", "push", "state.json"], in: folder.path, environment: ["SEGSYNC_DATABASE_URL": url])
            #expect(pushed.status == 0, "\(pushed.stderr)")

            let role = "ro_\(UUID().uuidString.lowercased().prefix(8))"
            try TestDatabase.psql("""
                CREATE ROLE \(role) LOGIN; GRANT CONNECT ON DATABASE postgres TO \(role);
                GRANT USAGE ON SCHEMA public TO \(role); GRANT SELECT ON ALL TABLES IN SCHEMA public TO \(role);
                """, url: url)
            var components = try #require(URLComponents(string: url))
            components.percentEncodedUser = role
            let reader = ["SEGSYNC_DATABASE_URL": try #require(components.string)]
            let status = try await CLI.run(["status", "--now", Self.now], in: folder.path, environment: reader)
            #expect(status.status == 0, "\(status.stderr)")
            #expect(!status.stderr.contains("permission denied"))
            let list = try await CLI.run(["state", "list"], in: folder.path, environment: reader)
            #expect(list.status == 0, "\(list.stderr)")
            let pull = try await CLI.run(["state", "pull"], in: folder.path, environment: reader)
            #expect(pull.stdout.contains("\"lineage\" : \"l-ro\""), "\(pull.stdout)\(pull.stderr)")

            // A database segsync never used: no tables are created, and there is no state yet.
            let database = "segsync_e2e_ro_\(UUID().uuidString.lowercased().prefix(8))"
            try TestDatabase.psql("CREATE DATABASE \(database)", url: url)
            let fresh = ["SEGSYNC_DATABASE_URL": TestDatabase.url(url, database: database)]
            let empty = try await CLI.run(["status", "--now", Self.now], in: folder.path, environment: fresh)
            #expect(empty.status == 0, "\(empty.stderr)")
            #expect(empty.stderr.contains("note: no state yet in the PostgreSQL state (workspace '\(workspace)'"), "\(empty.stderr)")
            #expect(try TestDatabase.psql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'segsync%'", url: fresh["SEGSYNC_DATABASE_URL"]!) == "0")
            try TestDatabase.psql("DROP DATABASE \(database)", url: url)
        }
    }
}
