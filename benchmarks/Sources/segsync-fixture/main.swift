// Writes a large, fully converged segsync workspace for benchmarks: a manifest of
// EXPORTS exports × DAYS daily partitions, a state file recording every partition as
// downloaded, the output files, segsync.lock and SHA256SUMS.
//
//   segsync-fixture DIR [EXPORTS] [DAYS] [NOW]
//
// With SEGSYNC_FIXTURE_WORKSPACE set, the manifest keeps its state in that PostgreSQL
// workspace (the URL in SEGSYNC_DATABASE_URL). `segsync-fixture --load DIR` times
// reading DIR's state from its store, best of 5, and prints "SECONDS PARTITIONS".
// `segsync-fixture --peak-memory EXECUTABLE ARGS…` runs EXECUTABLE with its output
// discarded and prints "STATUS KIB": its exit status and peak resident set (see below).
import Foundation
import SegSync
import SegSyncStorage
import SegSyncVocabulary

let arguments = CommandLine.arguments
let environment = ProcessInfo.processInfo.environment
if arguments.count >= 3, arguments[1] == "--peak-memory" {
    // Linux carries the spawning process's high-water RSS into the child's ru_maxrss when
    // it spawns with vfork (as posix_spawn does): measured from a test process that has
    // grown, every child would seem as large as that process. Spawned from this small
    // one, the child's figure is its own.
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    for descriptor: Int32 in [0, 1, 2] {
        posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", descriptor == 0 ? O_RDONLY : O_WRONLY, 0)
    }
    let argv = arguments.dropFirst(2).map { strdup($0) } + [nil]
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, argv[0]!, &actions, nil, argv, environ)
    guard spawned == 0 else {
        FileHandle.standardError.write(Data("segsync-fixture: cannot start \(arguments[2]): \(String(cString: strerror(spawned)))\n".utf8))
        exit(2)
    }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0, errno == EINTR {}
    print((status >> 8) & 0xff, usage.ru_maxrss)
    exit(0)
}
if arguments.count == 3, arguments[1] == "--load" {
    let manifest = try ManifestLoader.load(path: arguments[2] + "/segsync.yaml")
    let layout = Layout(manifestPath: arguments[2] + "/segsync.yaml", output: manifest.output)
    let store = try await StateBackend.open(manifest, layout: layout, environment: environment)
    var best = Double.infinity
    var count = 0
    var kept: State?
    for _ in 0..<5 {
        kept = nil  // the previous state is freed outside the timed part
        let started = ContinuousClock.now
        kept = try await store.load()
        let took = ContinuousClock.now - started
        count = kept?.partitions.count ?? 0
        best = min(best, Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18)
    }
    await store.close()
    print(String(format: "%.3f", best), count)
    exit(0)
}
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: segsync-fixture DIR [EXPORTS=100] [DAYS=365] [NOW=2026-11-28T00:00:00Z]\n".utf8))
    exit(2)
}
let root = arguments[1]
let exportCount = arguments.count > 2 ? Int(arguments[2]) ?? 100 : 100
let days = arguments.count > 3 ? Int(arguments[3]) ?? 365 : 365
let now = Timestamp.parse(arguments.count > 4 ? arguments[4] : "2026-11-28T00:00:00Z")!

let stateBlock = environment["SEGSYNC_FIXTURE_WORKSPACE"].map { "state: { backend: postgres, workspace: \($0) }\n" } ?? ""
var manifestText = "version: 1\n" + stateBlock + "output: exports\ndefaults:\n  window: { every: 1d, last: \(days)d, settle: 24h }\nexports:\n"
for index in 0..<exportCount {
    manifestText += "  - name: export-\(index)\n    segment: segment-\(index % 7)\n    type: \(index % 2 == 0 ? "events" : "individuals")\n"
}
try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
try manifestText.write(toFile: root + "/segsync.yaml", atomically: true, encoding: .utf8)
let manifest = try ManifestLoader.load(path: root + "/segsync.yaml")
let layout = Layout(manifestPath: root + "/segsync.yaml", output: manifest.output)
try AtomicFile.makeDirectory(layout.stateDirectory)

var state = State()
var entries: [Lockfile.Entry] = []
for export in manifest.exports {
    try AtomicFile.makeDirectory(layout.outputDirectory + "/" + export.name)
    for partition in try manifest.partitions(of: export, now: now) {
        let path = Layout.relativePath(for: partition, export: export)
        let absolute = layout.outputDirectory + "/" + path
        try Data("\(export.name) \(partition.label)\n".utf8).write(to: URL(fileURLWithPath: absolute))
        let digest = try FileDigest.sha256(ofFileAt: absolute)
        var record = PartitionRecord(partition: partition, parameters: ExportParameters(export, in: manifest), phase: .downloaded, now: now)
        record.operationId = "op-\(export.name)-\(partition.label)"
        record.attempts = 1
        record.output = OutputRecord(path: path, bytes: digest.bytes, sha256: digest.sha256,
                                     modified: ObservedFiles.modificationTime(ofFileAt: absolute))
        state[partition.key] = record
        entries.append(Lockfile.Entry(
            path: path, sha256: digest.sha256, bytes: digest.bytes, export: export.name, segment: export.segment,
            type: export.type, format: export.format, start: partition.start, end: partition.end,
            fingerprint: partition.fingerprint))
    }
}
// Into the store the manifest names (SQLite, or PostgreSQL from its urlEnv).
let store = try await StateBackend.open(manifest, layout: layout, environment: environment)
try await store.replace(with: state)
await store.close()
try await Lockfile(entries: entries).write(to: layout, output: FolderOutput(layout: layout))
print("wrote \(entries.count) partitions of \(manifest.exports.count) exports to \(root)")
