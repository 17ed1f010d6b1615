// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "segsync",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "segsync", targets: ["segsync"]),
        .executable(name: "segsync-emulator", targets: ["segsync-emulator"]),
        .library(name: "SegSync", targets: ["SegSync"]),
        .library(name: "FullStoryAPI", targets: ["FullStoryAPI"]),
        .library(name: "FullStoryContract", targets: ["FullStoryContract"]),
        .library(name: "SegSyncEmulator", targets: ["SegSyncEmulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.25.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.10.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
    ],
    targets: [
        // The system libyaml (Debian: libyaml-dev).
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"]), .brew(["libyaml"])]
        ),
        // Write loops, fsync and portable stat fields: shared by state, lockfile and downloads.
        .target(name: "FileIO", swiftSettings: swiftSettings),
        // The words segsync and the API share: dialect, export type and format, rate
        // limit, timestamps. Foundation only, no NIO.
        .target(name: "SegSyncVocabulary", swiftSettings: swiftSettings),
        // The contract between the core and the API client: the `ExportService` port, its
        // models and errors, endpoint rules and redaction. Foundation only: no HTTP, no NIO.
        .target(name: "FullStoryContract", dependencies: ["SegSyncVocabulary"], swiftSettings: swiftSettings),
        // The core: manifest, windows, state, lockfile, planner, executor. It sees the API
        // through `FullStoryContract` only and links no HTTP, NIO or database package.
        .target(
            name: "SegSync",
            dependencies: [
                "CYAML",
                "FileIO",
                "FullStoryContract",
                "SegSyncVocabulary",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The state engines behind the core's `StateStore`: SQLite (vendored by sqlite-nio)
        // beside the manifest, and PostgreSQL when runners share state.
        .target(
            name: "SegSyncStorage",
            dependencies: [
                "SegSync",
                "SegSyncVocabulary",
                "FileIO",
                "FullStoryContract",
                "ObjectStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The FullStory API client, both dialects.
        .target(
            name: "FullStoryAPI",
            dependencies: [
                "FileIO",
                "FullStoryContract",
                "SegSyncVocabulary",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // A real HTTP server that emulates the API, for tests, demos and benchmarks.
        .target(
            name: "SegSyncEmulator",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The commands, and the context they run in: the executable's whole body, and
        // what the end-to-end tests run in-process.
        .target(
            name: "SegSyncCLI",
            dependencies: [
                "SegSync",
                "SegSyncStorage",
                "FullStoryAPI",
                "FullStoryContract",
                "SegSyncVocabulary",
                "SegSyncEmulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "segsync", dependencies: ["SegSyncCLI"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "segsync-emulator",
            dependencies: [
                "SegSyncEmulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Generates large converged workspaces for the benchmarks in benchmarks/.
        .executableTarget(
            name: "segsync-fixture",
            dependencies: ["SegSync", "SegSyncStorage", "SegSyncVocabulary"],
            path: "benchmarks/Sources/segsync-fixture",
            swiftSettings: swiftSettings
        ),
        // libFuzzer targets (Fuzz/README.md): `Fuzz/run` builds them with -sanitize=fuzzer;
        // in an ordinary build each replays the inputs named on its command line.
        .target(name: "CFuzzing", path: "Fuzz/Sources/CFuzzing"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzing"], path: "Fuzz/Sources/FuzzSupport", swiftSettings: swiftSettings),
        .executableTarget(
            name: "fuzz-manifest",
            dependencies: ["SegSync", "SegSyncVocabulary", "FuzzSupport"],
            path: "Fuzz/Sources/fuzz-manifest",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fuzz-server-text",
            dependencies: ["FullStoryAPI", "SegSyncVocabulary", "FuzzSupport"],
            path: "Fuzz/Sources/fuzz-server-text",
            swiftSettings: swiftSettings
        ),
        // A small S3 client of its own (no AWS SDK): SigV4 signer checked against botocore,
        // credential chain, the operations a bucket output needs, streamed multipart uploads.
        .target(
            name: "ObjectStore",
            dependencies: [
                "SegSyncVocabulary",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Helpers the test targets share (temporary folders, waiting for other processes, a
        // moto S3 server that checks signatures).
        .target(
            name: "TestSupport",
            dependencies: [
                "ObjectStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SegSyncTests",
            dependencies: ["SegSync", "SegSyncStorage", "FullStoryContract", "SegSyncVocabulary", "TestSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FullStoryAPITests",
            dependencies: [
                "FileIO", "FullStoryAPI", "FullStoryContract", "SegSyncVocabulary", "SegSyncEmulator", "TestSupport",
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // The state-store suite, run against both engines.
        .testTarget(
            name: "StateStoreTests",
            dependencies: ["SegSync", "SegSyncStorage", "SegSyncVocabulary", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ObjectStoreTests",
            dependencies: [
                "ObjectStore",
                "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            // The botocore oracle, run by SigV4OracleTests from the source tree.
            exclude: ["sign_oracle.py"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "SegSync", "SegSyncCLI", "SegSyncVocabulary", "TestSupport", "ObjectStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            // Read by HelpTests, and run by BucketOutputTests, from the source tree; not bundled.
            exclude: ["Snapshots", "strip_conditions.py"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
