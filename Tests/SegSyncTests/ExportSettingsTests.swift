import Foundation
import SegSyncVocabulary
import Testing
@testable import SegSync

/// One list of what changes an export's bytes (``ExportParameters/settings``), and every
/// setting of an export classified (``ExportSpec/settingEffects``).
@Suite(.timeLimit(.minutes(1))) struct ExportSettingsTests {
    static let export = ExportSpec(
        name: "e", segment: "s", type: .events, format: .csv,
        window: WindowSpec(every: Span("1d")!, cadence: Cadence(Span("1d")!)!, extent: .start(Timestamp.parse("2026-03-07T23:00:00Z")!),
                           settle: Span()),
        timeZone: TimeZone(identifier: "Europe/Berlin")!, segmentWindow: Span("1d"), fields: ["a", "user_*"], decompress: true)

    @Test("every setting of an export is classified; those that change the bytes are the settings the fingerprint hashes")
    func everySettingClassified() {
        let properties = Mirror(reflecting: Self.export).children.compactMap(\.label)
        let unclassified = properties.filter { ExportSpec.settingEffects[$0] == nil }
        #expect(unclassified.isEmpty, "classify \(unclassified) in ExportSpec.settingEffects")
        #expect(Set(ExportSpec.settingEffects.keys) == Set(properties), "settingEffects names a property ExportSpec lacks")
        // Every property of the recorded parameters is one setting of the list, and each
        // byte-changing setting of an export reaches the parameters.
        let parameters = ExportParameters(Self.export, dialect: .fullstory, endpoint: "https://api.fullstory.com")
        let recorded = Mirror(reflecting: parameters).children.compactMap(\.label)
        #expect(recorded.count == ExportParameters.settings.count)
        let byteSettings = ExportSpec.settingEffects.filter { $0.value == .bytes }.keys
        for property in byteSettings {
            var changed = Self.export
            switch property {
            case "segment": changed.segment = "other"
            case "type": changed.type = .individuals
            case "format": changed.format = .json
            case "timeZone": changed.timeZone = TimeZone(identifier: "Asia/Tokyo")!
            case "segmentWindow": changed.segmentWindow = Span("7d")
            case "fields": changed.fields = []
            case "decompress": changed.decompress = false
            default: Issue.record("\(property) changes the bytes: give it a case here and a setting in ExportParameters.settings")
            }
            let after = ExportParameters(changed, dialect: .fullstory, endpoint: "https://api.fullstory.com")
            #expect(parameters.changes(to: after) != nil, "a change to \(property) is not described")
            let before = try! DesiredPartitions.partitions(of: Self.export, dialect: .fullstory, now: Timestamp.parse("2026-03-09T00:00:00Z")!)
            let now = try! DesiredPartitions.partitions(of: changed, dialect: .fullstory, now: Timestamp.parse("2026-03-09T00:00:00Z")!)
            #expect(before.first?.fingerprint != now.first?.fingerprint, "a change to \(property) leaves the fingerprint as it was")
        }
    }

    @Test("the fingerprint's bytes are those of every earlier release: no recorded partition is exported again")
    func fingerprintPinned() throws {
        let partitions = try DesiredPartitions.partitions(of: Self.export, dialect: .fullstory, now: Timestamp.parse("2026-03-09T00:00:00Z")!)
        #expect(partitions.first?.label == "2026-03-08")
        // sha256("v1\nendpoint=https://api.fullstory.com\ndialect=fullstory\nsegment=s\ntype=events\nformat=csv\n
        // timezone=Europe/Berlin\nfields=a,user_*\ndecompress=true\nrange=…/…\nsegmentRange=…/…"), computed outside segsync.
        #expect(partitions.first?.fingerprint == "0add2a67d27e2bce246418d9f939c362")
    }

    @Test("a lockfile entry is compared on the settings it records, each named as the plan names it")
    func lockfileComparison() {
        let parameters = ExportParameters(Self.export, dialect: .fullstory, endpoint: "https://api.fullstory.com")
        var entry = Lockfile.Entry(path: "e/2026-03-08.csv", sha256: String(repeating: "0", count: 64), bytes: 1, export: "e", segment: "s",
                                   type: .events, format: .csv, start: Date(), end: Date(), fingerprint: "f", source: "https://api.fullstory.com")
        #expect(parameters.changes(since: entry) == nil)
        entry.segment = "old"
        entry.format = .json
        entry.source = "http://127.0.0.1:8080"
        #expect(parameters.changes(since: entry)
            == "data source changed http://127.0.0.1:8080 → https://api.fullstory.com; segment changed old → s; format changed json → csv")
        entry.source = nil  // written before sources were recorded: says nothing about it
        #expect(parameters.changes(since: entry) == "segment changed old → s; format changed json → csv")
    }
}
