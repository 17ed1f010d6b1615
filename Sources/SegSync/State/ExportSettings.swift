import Foundation

/// What a change to one of an export's settings does to the partitions already made.
public enum SettingEffect: Sendable, Equatable {
    /// Another export's bytes: the partitions are exported again (their fingerprint changes).
    case bytes
    /// Only which partitions exist or where their files go; the bytes stay the same.
    case placement
    /// Nothing that was exported.
    case nothing
}

extension ExportSpec {
    /// Every setting of ``ExportSpec``, by its property name, classified: the one place
    /// that says whether a new manifest key changes the exported bytes. A test fails when
    /// a property is missing here; each `.bytes` setting must then appear in
    /// ``ExportParameters/settings``.
    static let settingEffects: [String: SettingEffect] = [
        "segment": .bytes, "type": .bytes, "format": .bytes, "timeZone": .bytes, "segmentWindow": .bytes,
        "fields": .bytes, "decompress": .bytes,
        // Sent as written, but the same zone as `timeZone`, which the fingerprint hashes.
        "timeZoneName": .nothing,
        "name": .placement, "window": .placement,
        "prune": .nothing, "location": .nothing,
    ]
}

extension ExportParameters {
    /// One setting that changes an export's bytes: its name in messages, its key in the
    /// fingerprint (nil: hashed per partition, as the segment's time range), its value,
    /// and its value as `segsync.lock` records it (nil: the lockfile does not).
    public struct Setting: Sendable {
        public let name: String
        let fingerprintKey: String?
        let value: @Sendable (ExportParameters) -> String
        let lockfileValue: (@Sendable (Lockfile.Entry) -> String?)?
    }

    /// Every setting that changes an export's bytes, in the fingerprint's order: what the
    /// fingerprint hashes, what a plan says changed, and what it compares with a lockfile
    /// entry when state has no record, all derive from this list.
    public static let settings: [Setting] = [
        // Another endpoint is another source of data (the emulator's is synthetic).
        Setting(name: "data source", fingerprintKey: "endpoint", value: { $0.endpoint ?? "" }, lockfileValue: { $0.source }),
        Setting(name: "dialect", fingerprintKey: "dialect", value: { $0.dialect.rawValue }, lockfileValue: nil),
        Setting(name: "segment", fingerprintKey: "segment", value: { $0.segment }, lockfileValue: { $0.segment }),
        Setting(name: "type", fingerprintKey: "type", value: { $0.type.rawValue }, lockfileValue: { $0.type.rawValue }),
        Setting(name: "format", fingerprintKey: "format", value: { $0.format.rawValue }, lockfileValue: { $0.format.rawValue }),
        Setting(name: "timezone", fingerprintKey: "timezone", value: { $0.timezone }, lockfileValue: nil),
        Setting(name: "fields", fingerprintKey: "fields", value: { $0.fields.joined(separator: ",") }, lockfileValue: nil),
        Setting(name: "decompress", fingerprintKey: "decompress", value: { String($0.decompress) }, lockfileValue: nil),
        Setting(name: "segmentWindow", fingerprintKey: nil, value: { $0.segmentWindow ?? "" }, lockfileValue: nil),
    ]

    /// "format changed json → csv; segment changed a → b", or nil when nothing differs.
    public func changes(to new: ExportParameters) -> String? {
        Self.describe(Self.settings.map { ($0.name, $0.value(self), $0.value(new)) })
    }

    /// What differs between a lockfile entry and these settings, for the settings the
    /// lockfile records; nil when nothing does. A lockfile from before data sources were
    /// recorded says nothing about its source.
    func changes(since entry: Lockfile.Entry) -> String? {
        Self.describe(Self.settings.compactMap { setting in
            guard let read = setting.lockfileValue, let old = read(entry) else { return nil }
            let new = setting.value(self)
            // Parameters that name no source (an old state record) compare as unknown.
            if setting.fingerprintKey == "endpoint", new.isEmpty { return nil }
            return (setting.name, old, new)
        })
    }

    private static func describe(_ pairs: [(name: String, old: String, new: String)]) -> String? {
        let changes = pairs.filter { $0.old != $0.new }.map { pair in
            "\(pair.name) changed \(pair.old.isEmpty ? "(none)" : pair.old) → \(pair.new.isEmpty ? "(none)" : pair.new)"
        }
        return changes.isEmpty ? nil : changes.joined(separator: "; ")
    }

    /// The fingerprint's text before the time ranges: `v1`, then `key=value` per setting,
    /// one a line. Its bytes must never change for the same settings: every recorded
    /// partition would be exported again.
    var fingerprintPrefix: String {
        (["v1"] + Self.settings.compactMap { setting in setting.fingerprintKey.map { "\($0)=\(setting.value(self))" } })
            .joined(separator: "\n")
    }
}
