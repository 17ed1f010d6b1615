import Crypto
import Foundation
import NIOCore
import ObjectStore
import SegSync
import Testing
import TestSupport

extension EndToEnd {
    /// `output: s3://bucket/prefix` end to end: the emulator's exports streamed into a real
    /// S3 server (moto, checking every signature), no output folder on this machine.
    @Suite(.serialized, .timeLimit(.minutes(10))) struct BucketOutputTests {
        /// A folder whose manifest writes to a new bucket of `moto`, under `fullstory/`.
        struct Setup {
            let folder: TemporaryFolder
            let emulator: EmulatorProcess
            let moto: MotoServer
            let client: S3Client
            let bucket: String
            var environment: [String: String]

            /// `endpoint` stands between segsync and moto (a proxy), when given; it needs the
            /// moto that checks no signatures.
            init?(_ test: String, prune: Bool = false, emulatorArguments: [String] = ["--operation-seconds", "0.2"],
                  checkingSignatures: Bool = true, endpoint: ((MotoServer) async throws -> String)? = nil) async throws {
                guard let moto = try await MotoServer.shared(test, checkingSignatures: checkingSignatures) else { return nil }
                self.moto = moto
                client = try moto.client()
                bucket = try await moto.bucket(client)
                folder = try TemporaryFolder()
                var manifest = Self.manifest(bucket: bucket, endpoint: try await endpoint?(moto) ?? moto.endpoint, prune: prune)
                // An emulator in the production dialect is spoken to in it.
                if emulatorArguments.contains("fullstory") {
                    manifest = manifest.replacingOccurrences(of: "version: 1\n", with: "version: 1\napi: { dialect: fullstory }\n")
                }
                try folder.write("segsync.yaml", manifest)
                emulator = try await EmulatorProcess(folder: folder, emulatorArguments)
                environment = emulator.environment.merging([
                    "AWS_ACCESS_KEY_ID": moto.admin.accessKeyId, "AWS_SECRET_ACCESS_KEY": moto.admin.secretAccessKey,
                ]) { _, new in new }
            }

            static func manifest(bucket: String, endpoint: String, prune: Bool = false, exports: String = ApplyTests.exports) -> String {
                """
                version: 1
                output: s3://\(bucket)/fullstory
                s3: { region: us-east-1, endpoint: "\(endpoint)", pathStyle: true }
                prune: \(prune)
                \(exports)
                """
            }

            func apply(_ extra: [String] = [], now: String = "2026-11-27T00:00:00Z", environment: [String: String]? = nil) async throws -> CLI.Result {
                try await CLI.run(["apply", "--now", now, "--poll-interval", "0.1"] + extra, in: folder.path, environment: environment ?? self.environment)
            }

            /// Every object below the prefix, by key relative to it.
            func objects() async throws -> [String: ObjectInfo] {
                var found: [String: ObjectInfo] = [:]
                for try await page in client.listObjects(bucket: bucket, prefix: "fullstory/") {
                    for object in page.objects { found[String(object.key.dropFirst("fullstory/".count))] = object }
                }
                return found
            }

            func read(_ relative: String) async throws -> [UInt8] {
                var bytes: [UInt8] = []
                try await client.getObject(bucket: bucket, key: "fullstory/" + relative) { bytes.append(contentsOf: $0.readableBytesView) }
                return bytes
            }

            /// What `aws s3 cp --recursive s3://…/ . && sha256sum -c SHA256SUMS` checks: every
            /// listed object's bytes against its line. Returns the paths checked.
            func checkSums() async throws -> [String] {
                let sums = try Checksums.parse(String(decoding: try await read(Checksums.fileName), as: UTF8.self))
                for (path, sha256) in sums {
                    let digest = SHA256.hash(data: try await read(path)).map { String(format: "%02x", $0) }.joined()
                    #expect(digest == sha256, "\(path): the object's bytes do not match SHA256SUMS")
                }
                return sums.keys.sorted()
            }
        }

        /// `strip_conditions.py` in front of moto: a store that ignores (or, `rejecting`,
        /// refuses) conditional writes, and a log of every request it forwards.
        final class Proxy {
            let port: Int
            private let server: HelperServer
            private let log = try! TemporaryFolder()

            init(upstream: String, rejecting: Bool = false) async throws {
                port = try freePort()
                let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("strip_conditions.py").path
                server = try HelperServer(["python3", script, String(port), upstream, "--log", log.path + "/requests"] + (rejecting ? ["--reject"] : []))
                guard await waitUntilListening(port: port, while: server) else {
                    server.stop()
                    throw MotoFailure("the proxy (strip_conditions.py) did not start listening")
                }
            }

            deinit { server.stop() }

            var endpoint: String { "http://127.0.0.1:\(port)" }

            /// "METHOD PATH" of every request since the last ``forget()``.
            var requests: [Substring] { (log.read("requests") ?? "").split(separator: "\n") }
            func forget() { try? FileManager.default.removeItem(atPath: log.path + "/requests") }

            /// Objects read or looked at one by one (`GET`, `HEAD` of a key below `prefix`),
            /// `SHA256SUMS` aside.
            func objectRequests(bucket: String, prefix: String = "fullstory/") -> [Substring] {
                requests.filter { line in
                    (line.hasPrefix("GET /\(bucket)/\(prefix)") || line.hasPrefix("HEAD /\(bucket)/\(prefix)"))
                        && !line.hasSuffix(Checksums.fileName)
                }
            }
        }

        @Test("a bucket output converges: 7 objects and SHA256SUMS in the bucket, nothing on disk, verify agrees; the next run sends nothing")
        func converges() async throws {
            guard let setup = try await Setup("converges") else { return }
            let first = try await setup.apply()
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            #expect(first.stdout.contains("Apply: 7 done, 0 failed."), "\(first.stdout)")
            #expect(setup.emulator.creates == 7)
            let objects = try await setup.objects()
            #expect(objects.count == 8, "\(objects.keys.sorted())")
            #expect(try await setup.checkSums().count == 7)
            #expect(!setup.folder.exists("exports"), "no output folder when the output is a bucket")
            let lock = try Lockfile.load(path: setup.folder.path + "/segsync.lock")
            #expect(lock.entries.count == 7)
            #expect(Set(lock.entries.map(\.path)) == Set(objects.keys).subtracting([Checksums.fileName]))
            // The decompressed export is stored as written: its bytes are JSON, not gzip.
            let json = try #require(lock.entries.first { $0.export == "everyone-daily" })
            #expect(try await setup.read(json.path).first == UInt8(ascii: "["))
            #expect(objects[json.path]?.size == json.bytes)

            for arguments in [["verify"], ["verify", "--sha256sums"]] {
                let verify = try await CLI.run(arguments, in: setup.folder.path, environment: setup.environment)
                #expect(verify.status == 0, "\(arguments): \(verify.stdout)\(verify.stderr)")
                #expect(verify.stdout.contains("s3://\(setup.bucket)/fullstory/"), "\(verify.stdout)")
            }

            let second = try await setup.apply()
            #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
            #expect(second.stdout == "No changes: 7 partitions up to date.\n")
            #expect(setup.emulator.creates == 7)
            #expect(setup.emulator.count("download") == 7, "no second download")
            let again = try await setup.objects()
            #expect(again.mapValues(\.etag) == objects.mapValues(\.etag), "no object was written again")
        }

        @Test("verify checks a bucket by one listing against the lockfile's sizes and ETags, reading no object; --checksum reads and hashes each; a replaced object of the same size is found either way")
        func verifiesByListing() async throws {
            // segsync speaks to moto directly; verify goes through a proxy that logs each request.
            guard let setup = try await Setup("verifiesByListing", checkingSignatures: false) else { return }
            #expect(try await setup.apply().status == 0)
            let objects = try await setup.objects()
            var lock = try Lockfile.load(path: setup.folder.path + "/segsync.lock")
            #expect(lock.entries.count == 7)
            for entry in lock.entries { #expect(entry.etag == objects[entry.path]?.etag, "\(entry.path): the lockfile keeps the object's ETag") }
            // Rebuilt from state, it says the same.
            try FileManager.default.removeItem(atPath: setup.folder.path + "/segsync.lock")
            #expect(try await setup.apply().status == 0)
            #expect(try Lockfile.load(path: setup.folder.path + "/segsync.lock") == lock)
            lock = try Lockfile.load(path: setup.folder.path + "/segsync.lock")

            let proxy = try await Proxy(upstream: setup.moto.endpoint)
            try setup.folder.write("segsync.yaml", Setup.manifest(bucket: setup.bucket, endpoint: proxy.endpoint))
            /// Objects read by `verify` with `arguments`.
            func verify(_ arguments: [String]) async throws -> (CLI.Result, reads: Int) {
                proxy.forget()
                let result = try await CLI.run(["verify"] + arguments, in: setup.folder.path, environment: setup.environment)
                return (result, proxy.objectRequests(bucket: setup.bucket).count)
            }
            let (quick, quickReads) = try await verify([])
            #expect(quick.status == 0, "\(quick.stdout)\(quick.stderr)")
            #expect(quickReads == 0, "verify reads no object while its size and ETag are the lockfile's")
            let (full, fullReads) = try await verify(["--checksum"])
            #expect(full.status == 0, "\(full.stdout)\(full.stderr)")
            #expect(fullReads == 7, "verify --checksum reads every object")

            // Same size, other bytes: the ETag tells without reading; the hash tells with --checksum.
            let replaced = try #require(lock.entries.first { $0.bytes > 8 })
            let other = String(repeating: "x", count: Int(replaced.bytes))
            try await setup.client.putObject(bucket: setup.bucket, key: "fullstory/" + replaced.path, body: ByteBuffer(string: other))
            let (after, afterReads) = try await verify([])
            #expect(after.status == 1)
            #expect(afterReads == 0)
            #expect(after.stdout.contains(replaced.path) && after.stdout.contains("replaced"), "\(after.stdout)")
            let (hashed, _) = try await verify(["--checksum"])
            #expect(hashed.status == 1)
            #expect(hashed.stdout.contains(replaced.path) && hashed.stdout.contains("checksum mismatch"), "\(hashed.stdout)")
        }

        @Test("state lost, lockfile kept: the objects are trusted by the lockfile's ETags (no object read or looked at one by one), nothing exported or uploaded again")
        func lockfileOnly() async throws {
            guard let setup = try await Setup("lockfileOnly", checkingSignatures: false) else { return }
            #expect(try await setup.apply().status == 0)
            let etags = try await setup.objects().mapValues(\.etag)
            try FileManager.default.removeItem(atPath: setup.folder.path + "/.segsync")
            let proxy = try await Proxy(upstream: setup.moto.endpoint)
            try setup.folder.write("segsync.yaml", Setup.manifest(bucket: setup.bucket, endpoint: proxy.endpoint))
            let again = try await setup.apply()
            #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
            #expect(setup.emulator.creates == 7)
            #expect(setup.emulator.count("download") == 7, "nothing downloaded again")
            #expect(proxy.objectRequests(bucket: setup.bucket).isEmpty, "\(proxy.requests)")
            #expect(try await setup.objects().mapValues(\.etag) == etags, "nothing uploaded again")
            let plan = try await CLI.run(["plan", "--now", "2026-11-27T00:00:00Z"], in: setup.folder.path, environment: setup.environment)
            #expect(plan.stdout.contains("No changes"), "the adopted records keep the ETags: \(plan.stdout)")
        }

        @Test("plan sees a deleted and a replaced object by the listing alone; apply writes the deleted one back and leaves the replaced one as someone wrote it")
        func deletedAndReplaced() async throws {
            guard let setup = try await Setup("deletedAndReplaced") else { return }
            let first = try await setup.apply()
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            let paths = try await setup.objects().keys.filter { $0 != Checksums.fileName }.sorted()
            let (deleted, replaced) = (paths[0], paths[1])
            try await setup.client.deleteObject(bucket: setup.bucket, key: "fullstory/" + deleted)
            try await setup.client.putObject(bucket: setup.bucket, key: "fullstory/" + replaced, body: ByteBuffer(string: "someone else's\n"))
            // Same size as recorded, other bytes: only the identity can tell.
            let plan = try await CLI.run(["plan", "--now", "2026-11-27T00:00:00Z", "--json"], in: setup.folder.path, environment: setup.environment)
            #expect(plan.status == 0, "\(plan.stdout)\(plan.stderr)")
            #expect(plan.stdout.contains(deleted) && plan.stdout.contains(replaced), "\(plan.stdout)")

            let repair = try await setup.apply()
            #expect(repair.status == 1, "the replaced object is refused: \(repair.stdout)\(repair.stderr)")
            #expect((repair.stdout + repair.stderr).contains("holds an object segsync did not write"), "\(repair.stdout)\(repair.stderr)")
            #expect(String(decoding: try await setup.read(replaced), as: UTF8.self) == "someone else's\n", "never overwritten")
            let objects = try await setup.objects()
            #expect(objects[deleted] != nil, "the deleted object is written back")
            #expect(setup.emulator.creates == 7, "written back from the recorded export, not a new one")
            #expect(try await setup.checkSums().contains(deleted))
        }

        @Test("an object segsync did not write, in the way of a new partition, is left alone and named; the other partitions land")
        func objectInTheWay() async throws {
            guard let setup = try await Setup("objectInTheWay") else { return }
            let key = "fullstory/checkout-events/2026-11-26T12-00Z.csv.gz"
            try await setup.client.putObject(bucket: setup.bucket, key: key, body: ByteBuffer(string: "mine\n"))
            let result = try await setup.apply()
            #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("6 done, 1 failed"), "\(result.stdout)")
            #expect((result.stdout + result.stderr).contains("s3://\(setup.bucket)/\(key) holds an object segsync did not write"), "\(result.stdout)\(result.stderr)")
            #expect(String(decoding: try await setup.read("checkout-events/2026-11-26T12-00Z.csv.gz"), as: UTF8.self) == "mine\n")
        }

        @Test("state and lockfile lost: the objects segsync wrote are its own (their metadata says so), replaced by the new exports, never refused")
        func lostState() async throws {
            guard let setup = try await Setup("lostState") else { return }
            #expect(try await setup.apply().status == 0)
            try FileManager.default.removeItem(atPath: setup.folder.path + "/.segsync")
            try FileManager.default.removeItem(atPath: setup.folder.path + "/segsync.lock")
            let again = try await setup.apply()
            #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
            #expect(setup.emulator.creates == 14, "nothing recorded: every partition is exported again")
            #expect(try await setup.checkSums().count == 7)
        }

        @Test("a store that ignores conditional writes, or answers them NotImplemented, is named in a warning and written to; segsync still leaves an object it did not write alone",
              arguments: [false, true])
        func ignoredConditions(rejecting: Bool) async throws {
            var proxy: Proxy?
            guard let setup = try await Setup("ignoredConditions", checkingSignatures: false, endpoint: { moto in
                proxy = try await Proxy(upstream: moto.endpoint, rejecting: rejecting)
                return proxy!.endpoint
            }) else { return }
            let key = "fullstory/checkout-events/2026-11-26T12-00Z.csv.gz"
            try await setup.client.putObject(bucket: setup.bucket, key: key, body: ByteBuffer(string: "mine\n"))
            let result = try await setup.apply()
            #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
            let warning = rejecting
                ? "the store does not support conditional writes (a write with If-None-Match: * was answered NotImplemented"
                : "the store ignores conditional writes"
            #expect(result.stderr.contains(warning), "\(result.stderr)")
            #expect(!rejecting || result.stderr.contains("so segsync writes without them"), "\(result.stderr)")
            #expect(result.stdout.contains("6 done, 1 failed"), "\(result.stdout)")
            #expect((result.stdout + result.stderr).contains("holds an object segsync did not write; it was left as it is"), "\(result.stdout)")
            #expect(String(decoding: try await setup.read("checkout-events/2026-11-26T12-00Z.csv.gz"), as: UTF8.self) == "mine\n")
            #expect(try await setup.objects().keys.filter { $0.contains(".segsync-probe") }.isEmpty, "the probe is deleted")

            // Through the same store, the object moved away: the partition is written, and
            // every object is as SHA256SUMS says.
            try await setup.client.deleteObject(bucket: setup.bucket, key: key)
            let again = try await setup.apply()
            #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
            #expect(again.stderr.contains(warning), "\(again.stderr)")
            #expect(try await setup.checkSums().count == 7)
            #expect(setup.emulator.creates == 7)

            // moto itself honours them: no warning.
            try setup.folder.write("segsync.yaml", Setup.manifest(bucket: setup.bucket, endpoint: setup.moto.endpoint))
            try await setup.client.deleteObject(bucket: setup.bucket, key: key)
            let direct = try await setup.apply()
            #expect(setup.emulator.creates == 7, "a deleted object is fetched again from its recorded export, not exported again")
            #expect(direct.status == 0, "\(direct.stdout)\(direct.stderr)")
            #expect(!direct.stderr.contains("conditional writes"), "\(direct.stderr)")
        }

        @Test("refused credentials and a missing bucket stop apply before any export, in one sentence without the secret")
        func unusableStore() async throws {
            guard let setup = try await Setup("unusableStore") else { return }
            var wrong = setup.environment
            wrong["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-at-all"
            let refused = try await setup.apply(environment: wrong)
            #expect(refused.status == 1, "\(refused.stdout)\(refused.stderr)")
            #expect(refused.stderr.contains("SignatureDoesNotMatch"), "\(refused.stderr)")
            #expect(!refused.stderr.contains("not-the-secret-at-all"))
            #expect(setup.emulator.creates == 0, "nothing is exported for an output that cannot be written")

            try setup.folder.write("segsync.yaml", Setup.manifest(bucket: "segsync-no-such-bucket", endpoint: setup.moto.endpoint))
            let missing = try await setup.apply()
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("The bucket 'segsync-no-such-bucket' does not exist"), "\(missing.stderr)")

            var none = setup.environment
            none["AWS_ACCESS_KEY_ID"] = nil
            none["AWS_SECRET_ACCESS_KEY"] = nil
            none["AWS_SHARED_CREDENTIALS_FILE"] = setup.folder.path + "/no-credentials"
            none["AWS_CONFIG_FILE"] = setup.folder.path + "/no-config"
            let noCredentials = try await setup.apply(environment: none)
            #expect(noCredentials.status == 1)
            #expect(noCredentials.stderr.contains("No AWS credentials found"), "\(noCredentials.stderr)")
            #expect(setup.emulator.creates == 0)
        }

        @Test("prune deletes the objects of an export no longer declared, and only those")
        func prune() async throws {
            guard let setup = try await Setup("prune", prune: true) else { return }
            #expect(try await setup.apply().status == 0)
            try setup.folder.write("segsync.yaml", Setup.manifest(bucket: setup.bucket, endpoint: setup.moto.endpoint, prune: true, exports: """
                exports:
                  - name: everyone-daily
                    segment: everyone
                    type: individuals
                    decompress: true
                    window: { every: 1d, last: 3d, settle: 24h }
                """))
            let pruned = try await setup.apply()
            #expect(pruned.status == 0, "\(pruned.stdout)\(pruned.stderr)")
            let objects = try await setup.objects()
            #expect(objects.keys.filter { $0.hasPrefix("checkout-events/") }.isEmpty, "\(objects.keys.sorted())")
            #expect(objects.keys.filter { $0.hasPrefix("everyone-daily/") }.count == 3)
            #expect(try await setup.checkSums().count == 3)
        }

        @Test("killed (SIGKILL) at seeded instants while exports stream into the bucket, apply converges: every object as SHA256SUMS says, no upload left, no export twice")
        func killedWhileUploading() async throws {
            var random = SplitMix(seed: CrashTests.seed ^ 0xB0C4E7)
            var duplicates = 0
            for round in 0..<CrashTests.rounds {
                let instant = Int(random.next() % 2_000)
                guard let setup = try await Setup("killedWhileUploading", emulatorArguments: CrashTests.faults) else { return }
                let victim = try CLI.start(["apply", "--now", ApplyTests.now, "--poll-interval", "0.1"], in: setup.folder.path, environment: setup.environment)
                let drain = CLI.Drain(victim.stdout.fileHandleForReading), drainErrors = CLI.Drain(victim.stderr.fileHandleForReading)
                try await Task.sleep(for: .milliseconds(instant))
                kill(victim.process.processIdentifier, SIGKILL)
                _ = await victim.exit()
                _ = (await drain.end(), await drainErrors.end())
                #expect(await waitUntil { setup.emulator.createsSettled })
                let state = try? await CLI.state(setup.folder.path, environment: setup.environment)
                let kept = Set(state?.partitions.values.compactMap(\.operationId) ?? [])
                let made = setup.emulator.createdOperations
                let lost = made.all.subtracting(kept).subtracting(setup.emulator.polledOperations.intersection(made.failing))

                var runs = 0
                var last = CLI.Result(status: -1, stdout: "", stderr: "")
                while runs < 8, last.status != 0 {
                    runs += 1
                    last = try await setup.apply(["--retry-failed"], now: ApplyTests.now)
                }
                #expect(last.status == 0, "round \(round) (SIGKILL at \(instant) ms) did not converge: \(last.stdout)\(last.stderr)")
                let objects = try await setup.objects()
                #expect(try await setup.checkSums().count == 7, "round \(round)")
                #expect(objects.count == 8, "round \(round): \(objects.keys.sorted())")
                #expect(try await setup.client.listMultipartUploads(bucket: setup.bucket, prefix: "fullstory/").isEmpty, "round \(round): an upload was left")
                let verify = try await CLI.run(["verify"], in: setup.folder.path, environment: setup.environment)
                #expect(verify.status == 0, "round \(round): \(verify.stdout)")
                let failed = setup.emulator.createdOperations.failing.count
                let extra = setup.emulator.creates - 7 - failed
                print("bucket crash round \(round): SIGKILL at \(instant) ms, \(setup.emulator.creates) creates, \(failed) FAILED, \(lost.count) ids lost and adopted, \(extra) duplicates, converged after \(runs) run(s)")
                #expect(extra == 0, "round \(round): an id lost between a create's answer and its commit is adopted, not exported again")
                duplicates += extra
            }
            print("bucket crash suite: \(CrashTests.rounds) rounds, \(duplicates) duplicate export(s)")
        }

        @Test("the ephemeral-runner loop: three runs, each in a fresh folder holding only segsync.yaml and segsync.lock, state in PostgreSQL; the second and third export, download and upload nothing")
        func ephemeralRunners() async throws {
            guard let database = TestDatabase.urlOrSkip("ephemeral-runner loop") else { return }
            guard var setup = try await Setup("ephemeralRunners") else { return }
            let workspace = TestDatabase.uniqueWorkspace("loop")
            let manifest = Setup.manifest(bucket: setup.bucket, endpoint: setup.moto.endpoint)
                .replacingOccurrences(of: "version: 1\n", with: "version: 1\nstate: { backend: postgres, workspace: \(workspace) }\n")
            setup.environment["SEGSYNC_DATABASE_URL"] = database
            var lockfile: String?
            var etags: [String: String]?
            for run in 1...3 {
                let clone = try TemporaryFolder()
                try clone.write("segsync.yaml", manifest)
                if let lockfile { try clone.write("segsync.lock", lockfile) }
                let result = try await CLI.run(["apply", "--now", "2026-11-27T00:00:00Z", "--poll-interval", "0.1"], in: clone.path,
                                               environment: setup.environment)
                #expect(result.status == 0, "run \(run): \(result.stdout)\(result.stderr)")
                #expect(setup.emulator.creates == 7, "run \(run)")
                #expect(setup.emulator.count("download") == 7, "run \(run): only the first run downloads")
                if run > 1 { #expect(result.stdout == "No changes: 7 partitions up to date.\n", "run \(run): \(result.stdout)") }
                let now = try await setup.objects().mapValues(\.etag)
                if let etags { #expect(now == etags, "run \(run): nothing uploaded") }
                etags = now
                #expect(!clone.exists(".segsync"), "state lives in PostgreSQL")
                lockfile = clone.read("segsync.lock")
                #expect(lockfile != nil)
            }
        }

        @Test("window.final on a bucket: an unchanged final export leaves the object as it was (its ETag too), a changed one replaces it")
        func finalizes() async throws {
            let exports = """
                exports:
                  - name: checkout
                    segment: checkout_abandoners
                    type: events
                    format: csv
                    window: { every: 1h, start: 2026-11-27T00:00:00Z, settle: 2h, final: 6h }
                """
            let late = ["--operation-seconds", "0.2", "--late-rate", "0.3", "--late-hours", "3", "--clock-start"]
            guard let setup = try await Setup("finalizes", emulatorArguments: late + [FinalityTests.first]) else { return }
            try setup.folder.write("segsync.yaml", Setup.manifest(bucket: setup.bucket, endpoint: setup.moto.endpoint, exports: exports))
            let first = try await setup.apply(now: FinalityTests.first)
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            let before = try await setup.objects().mapValues(\.etag)
            let port = setup.emulator.port
            await setup.emulator.stop()
            let later = try await EmulatorProcess(folder: setup.folder, late + [FinalityTests.second], port: port)
            let second = try await setup.apply(["--json"], now: FinalityTests.second)
            #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
            let document = try FinalityTests.document(second)
            #expect(document["finalized"] as? Int == 4)
            #expect(document["finalized_changed"] as? Int == 1)
            let after = try await setup.objects().mapValues(\.etag)
            for hour in ["02", "03", "04"] {
                let path = "checkout/2026-11-27T\(hour)-00Z.csv.gz"
                #expect(after[path] != nil && after[path] == before[path], "\(path) kept: not uploaded again")
            }
            let changed = "checkout/2026-11-27T05-00Z.csv.gz"
            #expect(after[changed] != nil && after[changed] != before[changed], "\(changed) replaced")
            #expect(try await setup.checkSums().count == 10)
            #expect(later.creates == 14, "6, then 4 new and one more for each provisional partition")
            #expect(try await setup.client.listMultipartUploads(bucket: setup.bucket, prefix: "fullstory/").isEmpty, "no upload left")
        }

        @Test("a multipart upload a killed run left below an export's folder is aborted by the next run; others are not touched")
        func leftoverUploads() async throws {
            guard let setup = try await Setup("leftoverUploads") else { return }
            let ours = try await setup.client.createMultipartUpload(bucket: setup.bucket, key: "fullstory/checkout-events/2026-11-26T12-00Z.csv.gz")
            let theirs = try await setup.client.createMultipartUpload(bucket: setup.bucket, key: "fullstory/elsewhere/data.bin")
            #expect(try await setup.apply().status == 0)
            let left = try await setup.client.listMultipartUploads(bucket: setup.bucket, prefix: "fullstory/").map(\.uploadId)
            #expect(!left.contains(ours))
            #expect(left == [theirs])
        }
    }
}
