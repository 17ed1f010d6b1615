import Foundation
import Testing
import TestSupport

/// `segsync-emulator` running as its own process on an ephemeral loopback port, with a
/// request log the tests read to count calls.
final class EmulatorProcess: @unchecked Sendable {
    let running: CLI.Running
    let url: String
    let requestLog: String
    let arguments: [String]

    static let key = "e2e-key"

    /// Starts the emulator and waits for its `listening on …` line.
    /// `port` 0 picks a free one; pass ``port`` of a stopped emulator to restart it at the
    /// same endpoint (the data source segsync records with every file).
    init(folder: TemporaryFolder, _ extra: [String] = [], logName: String = "requests.jsonl", port: Int = 0, seed: UInt64 = 7) async throws {
        requestLog = folder.path + "/" + logName
        arguments = ["--port", String(port), "--api-key", Self.key, "--seed", String(seed), "--request-log", requestLog] + extra
        running = try CLI.start(arguments, in: folder.path, executable: "segsync-emulator")
        // The first line is read on a thread of its own: a test waiting for it holds no
        // thread of the cooperative pool (two cores: two threads, shared by every test).
        let firstLine = Completion<Data>()
        let handle = running.stdout.fileHandleForReading
        Thread.detachNewThread {
            var line = Data()
            while !line.contains(UInt8(ascii: "\n")) {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                line.append(chunk)
            }
            firstLine.finish(line)
        }
        let process = running.process
        let timeout = Task {
            try await Task.sleep(for: .seconds(60))
            if process.isRunning { process.terminate() }  // its pipe closes: the reader returns
        }
        let text = String(decoding: await firstLine.value(), as: UTF8.self)
        timeout.cancel()
        guard let range = text.range(of: "http://") else {
            if running.process.isRunning { running.process.terminate() }
            throw EmulatorFailure(message: "the emulator did not start: \(text)")
        }
        url = String(text[range.lowerBound...].prefix { !$0.isWhitespace })
    }

    struct EmulatorFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// The port it listens on.
    var port: Int { Int(url.split(separator: ":").last ?? "") ?? 0 }

    /// Logged requests of one kind, whatever their status.
    func all(_ kind: String) -> [String] {
        guard let text = try? String(contentsOfFile: requestLog, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map(String.init).filter { $0.contains("\"kind\":\"\(kind)\"") }
    }

    /// What segsync needs to talk to this emulator.
    var environment: [String: String] {
        ["FULLSTORY_API_URL": url, "FULLSTORY_API_KEY": Self.key]
    }

    /// Logged requests of one kind (`createExport`, `getOperation`, `download`, …) that succeeded.
    func count(_ kind: String) -> Int {
        guard let text = try? String(contentsOfFile: requestLog, encoding: .utf8) else { return 0 }
        return text.split(separator: "\n").filter { line in
            line.contains("\"kind\":\"\(kind)\"") && line.contains("\"status\":200")
        }.count
    }

    /// Exports the emulator made, whether anyone read the answer or not (a reset after a
    /// create, an unreadable answer): every logged create that names its operation.
    var creates: Int { entries("createExport").filter { $0["operation"] != nil }.count }

    /// The logged requests of one kind, decoded (`operation`, `fault`, `path`, `status`, …).
    func entries(_ kind: String) -> [[String: Any]] {
        all(kind).compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }

    /// Every export the emulator made, by operation id, whether anyone read the answer or
    /// not; `failing` are those that will end FAILED.
    var createdOperations: (all: Set<String>, failing: Set<String>) {
        let made = entries("createExport").filter { $0["operation"] != nil }
        let ids = { (entries: [[String: Any]]) in Set(entries.compactMap { $0["operation"] as? String }) }
        return (ids(made), ids(made.filter { ($0["fault"] as? String) == "fail" }))
    }

    /// Every create the emulator received has been answered (whether anyone read it): the
    /// handler's answers match its arrivals. Faults injected before the handler (429, 5xx,
    /// a rejected key) never reach it; a reset of a create comes after it (it names the export).
    var createsSettled: Bool {
        let beforeHandler: Set<String> = ["429", "5xx", "reset", "rejected-key"]
        let answered = entries("createExport").filter { entry in
            entry["operation"] != nil || ((entry["status"] as? Int ?? 0) != 0 && !beforeHandler.contains(entry["fault"] as? String ?? ""))
        }
        return answered.count == all("createReceived").count
    }

    /// The operation ids a client polled.
    var polledOperations: Set<String> {
        Set(entries("getOperation").compactMap { ($0["path"] as? String)?.split(separator: "/").last.map(String.init) })
    }

    /// Stops the emulator and waits until it has exited (its port is free again).
    func stop() async {
        guard running.process.isRunning else { return }
        running.process.terminate()
        _ = await running.exit()
    }

    /// Released without ``stop()``: asked to stop, not waited for.
    deinit {
        if running.process.isRunning { running.process.terminate() }
    }
}
