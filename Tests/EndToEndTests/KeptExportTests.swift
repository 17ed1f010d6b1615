import Foundation
import SegSync
import Testing
import TestSupport

extension EndToEnd {
    /// Issue 18 as a user meets it: the emulator misbehaves the way a proxy, a rotated key
    /// or a lost answer does, and the request log counts creates per partition. A
    /// recorded export is never exported again; the next run resumes it.
    @Suite(.serialized, .timeLimit(.minutes(10))) struct KeptExportTests {
        static let now = ApplyTests.now
        /// Seven partitions: four of `checkout-events`, three of `everyone-daily`.
        static let manifest = ApplyTests.manifest
        static let partitions = 7

        func apply(_ folder: TemporaryFolder, _ emulator: EmulatorProcess, _ extra: [String] = []) async throws -> CLI.Result {
            try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.05"] + extra, in: folder.path,
                              environment: emulator.environment)
        }

        /// Creates per partition, from the request log: start of each create's time range.
        func report(_ name: String, _ emulator: EmulatorProcess) {
            print("kept exports (\(name)): \(Self.partitions) partitions, \(emulator.creates) creates in the request log")
        }

        @Test("polls answered 200 with a proxy's HTML page: the partitions stop for the run, their ids kept; the next run resumes them with 0 creates")
        func htmlPolls() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.3", "--html-polls", "40"])
            let first = try await apply(folder, emulator)
            #expect(first.status == 1, "\(first.stdout)\(first.stderr)")
            #expect(first.stdout.contains("response segsync cannot read"), "\(first.stdout)")
            #expect(emulator.creates == Self.partitions)
            // Until the proxy goes away, every run resumes and none exports again.
            var runs = 1
            var last = first
            while last.status != 0, runs < 10 {
                last = try await apply(folder, emulator)
                runs += 1
            }
            #expect(last.status == 0, "\(last.stdout)\(last.stderr)")
            #expect(emulator.creates == Self.partitions, "\(Self.partitions) partitions, \(emulator.creates) creates")
            #expect(emulator.all("getOperation").filter { $0.contains("\"fault\":\"html\"") }.count == 40)
            report("40 HTML polls, \(runs) runs", emulator)
            #expect(try await CLI.run(["verify"], in: folder.path).status == 0)
        }

        @Test("a key rejected mid-run stops the whole run at once with one sentence; every id is kept and the next run resumes them all")
        func rotatedKey() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            // Call 1 is apply's first check, then the creates (one at a time), each followed
            // by its operation's first poll: 15 calls. The key is refused from the sixteenth
            // call (the second polls, a second later) for a while, then works again.
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "3", "--reject-key-from", "16", "--reject-key-count", "8"])
            let stopped = try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "1", "--max-in-flight", "7"], in: folder.path,
                                            environment: emulator.environment)
            #expect(stopped.status == 1, "\(stopped.stdout)\(stopped.stderr)")
            let sentences = stopped.stderr.components(separatedBy: "rejected the API key from FULLSTORY_API_KEY").count - 1
            #expect(sentences == 1, "the key's problem is said once: \(stopped.stderr)")
            #expect(stopped.stderr.contains("every recorded export is kept and resumed by the next run"), "\(stopped.stderr)")
            #expect(!stopped.stdout.contains("Failed:"), "\(stopped.stdout)")
            #expect(emulator.creates == Self.partitions)
            let state = try await CLI.state(folder.path)
            #expect(state.partitions.values.compactMap(\.operationId).count == Self.partitions)
            #expect(state.partitions.values.allSatisfy { $0.phase != .failed })

            var last = stopped
            var runs = 0
            while last.status != 0, runs < 12 {
                last = try await apply(folder, emulator)
                runs += 1
            }
            #expect(last.status == 0, "\(last.stdout)\(last.stderr)")
            #expect(emulator.creates == Self.partitions, "\(Self.partitions) partitions, \(emulator.creates) creates")
            report("8 calls refused with 401, \(runs + 1) runs", emulator)
        }

        @Test("a create answered 2xx with an unreadable body counts as an export with an unknown id, in text and --json")
        func unreadableCreate() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", Self.manifest)
            let emulator = try await EmulatorProcess(folder: folder, ["--operation-seconds", "0.2", "--rate-unreadable-create", "1", "--max-faults", "1"])
            let first = try await apply(folder, emulator)
            #expect(first.status == 1, "\(first.stdout)\(first.stderr)")
            #expect(first.stdout.contains("7 exports created, 1 with an unknown id (exported again by the next run)."), "\(first.stdout)")
            let state = try await CLI.state(folder.path)
            let unknown = try #require(state.partitions.values.first { $0.operationId == nil })
            #expect(unknown.attempts == 1 && unknown.phase == .creating)
            // The seed API lists no operations: the next run exports that partition again
            // (its id was never learnt) and only it. (`AdoptionTests`: production adopts it.)
            let second = try await CLI.run(["apply", "--now", Self.now, "--poll-interval", "0.05", "--json"], in: folder.path,
                                           environment: emulator.environment)
            #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any])
            #expect(document["exports_created"] as? Int == 1)
            #expect(document["exports_with_unknown_id"] as? Int == 0)
            #expect(emulator.creates == Self.partitions + 1)
            report("1 unreadable create answer", emulator)
        }
    }
}
