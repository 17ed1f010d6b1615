import Foundation
import Testing
import TestSupport

extension EndToEnd {
    /// The one endpoint rule, as commands follow it: `--endpoint`, else `FULLSTORY_API_URL`,
    /// else the manifest's `api.endpoint`; `emulator` from any of them.
    @Suite(.serialized, .timeLimit(.minutes(10))) struct EndpointTests {
        @Test("FULLSTORY_API_URL=emulator runs segments list on the built-in emulator, with no manifest and no key")
        func emulatorWithoutManifest() async throws {
            let folder = try TemporaryFolder()
            let listed = try await CLI.run(["segments", "list"], in: folder.path, environment: ["FULLSTORY_API_URL": "emulator"])
            #expect(listed.status == 0, "\(listed.stdout)\(listed.stderr)")
            #expect(listed.stdout.contains("everyone"), "\(listed.stdout)")
            let flagged = try await CLI.run(["segments", "list", "--endpoint", "emulator"], in: folder.path,
                                            environment: ["FULLSTORY_API_URL": "http://10.0.0.1:1"])
            #expect(flagged.status == 0, "--endpoint wins over FULLSTORY_API_URL: \(flagged.stdout)\(flagged.stderr)")
        }

        @Test("the environment wins over the manifest; an unusable endpoint is named with its source and redacted")
        func environmentOverManifest() async throws {
            let folder = try TemporaryFolder()
            try folder.write("segsync.yaml", """
                version: 1
                api: { endpoint: emulator }
                exports:
                  - { name: daily, segment: everyone, type: individuals, window: { every: 1d, last: 2d } }
                """)
            let refused = try await CLI.run(["segments", "list"], in: folder.path,
                                            environment: ["FULLSTORY_API_URL": "http://user:hunter2@10.0.0.1:1/?token=abc"])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("FULLSTORY_API_URL"), "\(refused.stderr)")
            #expect(!refused.stderr.contains("hunter2") && !refused.stderr.contains("abc"), "\(refused.stderr)")
            let manifest = try await CLI.run(["segments", "list"], in: folder.path)
            #expect(manifest.status == 0, "the manifest's emulator: \(manifest.stdout)\(manifest.stderr)")
        }
    }
}
