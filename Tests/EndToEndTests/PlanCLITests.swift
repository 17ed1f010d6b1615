import Foundation
import SegSync
import Testing
import TestSupport

extension EndToEnd {
    @Suite struct PlanCLITests {
        static let manifest = """
            version: 1
            exports:
              - name: checkout-events
                segment: checkout_abandoners
                type: events
                format: csv
                window: { every: 6h, last: 1d, settle: 2h }
            """

        @Test("validate reports every mistake compiler-style, exits 1 and writes nothing")
        func validateErrors() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", "version: 1\nexports:\n  - name: a\n    segment: s\n    type: evnets\n    fromat: csv\n")
            let result = try await CLI.run(["validate"], in: folder.path)
            #expect(result.status == 1)
            #expect(result.stderr == """
                segsync.yaml:5:11: error: unknown type 'evnets' (did you mean 'events'?); expected one of: individuals, events
                segsync.yaml:6:5: error: unknown key 'fromat' (did you mean 'format'?)
                2 errors found; nothing was changed.

                """)
            #expect(folder.list() == ["segsync.yaml"])
            let plan = try await CLI.run(["plan"], in: folder.path)
            #expect(plan.status == 1)
            #expect(folder.list() == ["segsync.yaml"])
        }

        @Test("validate accepts the examples shipped in the repository")
        func examplesAreValid() async throws {
            let root = ((#filePath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("../..")
            for path in ["examples/segsync.yaml", "examples/quickstart/segsync.yaml"] {
                let result = try await CLI.run(["validate", "-f", path], in: root)
                #expect(result.status == 0, "\(path): \(result.stderr)")
            }
        }

        @Test("plan --detailed-exitcode: 2 with changes, --json is a versioned document")
        func planFromScratch() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let text = try await CLI.run(["plan", "--now", "2026-11-28T00:00:00Z", "--detailed-exitcode"], in: folder.path)
            #expect(text.status == 2)
            #expect(text.stdout.hasSuffix("Plan: 4 to create, 0 to resume, 0 to download, 0 to repair, 0 to replace, 0 to prune; 0 up to date.\n"))
            let json = try await CLI.run(["plan", "--now", "2026-11-28T00:00:00Z", "--json"], in: folder.path)
            #expect(json.status == 0)
            let document = try JSONDecoder().decode(PlanRenderer.Document.self, from: Data(json.stdout.utf8))
            #expect(document.formatVersion == 1)
            #expect(document.actions.map(\.label) == ["2026-11-26T18:00Z", "2026-11-27T00:00Z", "2026-11-27T06:00Z", "2026-11-27T12:00Z"])
            let bad = try await CLI.run(["plan", "--now", "yesterday"], in: folder.path)
            #expect(bad.status != 0)
            #expect(bad.stderr.contains("--now yesterday is not an RFC 3339 time"))
        }

        /// Holds `.segsync/lock` as another run would, with its holder lines.
        final class HeldLock {
            let fd: Int32
            init(_ folder: TemporaryFolder) throws {
                try FileManager.default.createDirectory(atPath: folder.path + "/.segsync", withIntermediateDirectories: true)
                fd = open(folder.path + "/.segsync/lock", O_RDWR | O_CREAT, 0o600)
                #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
                let text = "pid=4242\nhost=runner-7\ncommand=segsync apply\nstarted=2026-11-28T09:00:00Z\n"
                _ = text.withCString { write(fd, $0, strlen($0)) }
            }
            func release() { close(fd) }
        }

        @Test("a second run fails at once, naming the holder's pid, host, command and start time")
        func lockContention() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let held = try HeldLock(folder)
            // The lock stays held until this test ends, so the run exiting at all shows it
            // did not wait for it; no timing margin is involved.
            let result = try await CLI.run(["plan"], in: folder.path)
            #expect(result.status == 1)
            #expect(result.stderr.contains("another segsync run has the lock on the SQLite state .segsync/state.sqlite (held by pid 4242 on runner-7, 'segsync apply', started 2026-11-28T09:00:00Z); wait for it to finish, or pass --lock-timeout"), "\(result.stderr)")
            let waited = try await CLI.run(["plan", "--lock-timeout", "1s"], in: folder.path)
            #expect(waited.status == 1)
            #expect(waited.stderr.contains("after waiting 1s (held by pid 4242"), "\(waited.stderr)")
            let bad = try await CLI.run(["plan", "--lock-timeout", "soon"], in: folder.path)
            #expect(bad.status == 64)
            #expect(bad.stderr.contains("--lock-timeout soon is not a duration"))
            held.release()
        }

        @Test("--lock-timeout waits for the holder and then runs")
        func lockWait() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let held = try HeldLock(folder)
            let waiting = try CLI.start(["plan", "--offline", "--lock-timeout", "10m"], in: folder.path)
            let out = CLI.Drain(waiting.stdout.fileHandleForReading)
            let err = CLI.Drain(waiting.stderr.fileHandleForReading)
            // It says it waits (without the wait it would have failed at once).
            #expect(await waitUntil { err.text.contains("note: waiting up to 10m for the lock on the SQLite state .segsync/state.sqlite (held by pid 4242 on runner-7") })
            #expect(waiting.process.isRunning)
            held.release()
            _ = await waiting.exit()
            let errors = String(decoding: await err.end(), as: UTF8.self)
            #expect(waiting.process.terminationStatus == 0, "\(errors)")
            #expect(String(decoding: await out.end(), as: UTF8.self).contains("Plan: "))
        }

        @Test("state that cannot be read stops the run and is left as it was")
        func corruptState() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            try folder.write(".segsync/state.sqlite", "garbage that is not a database")
            let result = try await CLI.run(["plan"], in: folder.path)
            #expect(result.status == 1)
            #expect(result.stderr.contains("the SQLite state .segsync/state.sqlite"), "\(result.stderr)")
            #expect(result.stderr.contains("not a database"), "\(result.stderr)")
            #expect(folder.read(".segsync/state.sqlite") == "garbage that is not a database")

            // An earlier build's state.json that cannot be read is not imported, nor moved.
            let other = try TemporaryFolder()
            try other.write("segsync.yaml", Self.manifest)
            try other.write(".segsync/state.json", "garbage")
            let legacy = try await CLI.run(["plan"], in: other.path)
            #expect(legacy.status == 1)
            #expect(legacy.stderr.contains("the earlier state file \(other.path)/.segsync/state.json is not segsync state (not JSON)"), "\(legacy.stderr)")
            #expect(other.read(".segsync/state.json") == "garbage")
        }
    }
}
