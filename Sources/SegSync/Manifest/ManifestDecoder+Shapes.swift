import Foundation
import SegSyncVocabulary

// The generic shapes a manifest is made of (strings, numbers, booleans, choices, lists,
// spans, mappings), each read with a diagnostic at its position when it is wrong.
extension ManifestDecoder {

    /// The mapping's entries by key, reporting unknown keys with the nearest valid one.
    mutating func entries(_ node: YAMLNode, allowed: [String], what: String) -> [String: YAMLNode.Pair]? {
        guard case .mapping(let pairs) = node.kind else {
            error(node.location, "expected a mapping for \(what), found \(node.kindDescription)")
            return nil
        }
        var result: [String: YAMLNode.Pair] = [:]
        for pair in pairs {
            guard let key = pair.key.scalar else {
                error(pair.key.location, "keys in \(what) must be plain words, found \(pair.key.kindDescription)")
                continue
            }
            if Self.secretKeys.contains(key.lowercased()) {
                error(pair.value.location, "the manifest must not contain an API key ('\(key)'); remove it and put the key in the environment variable named by api.keyEnv (FULLSTORY_API_KEY by default)")
                continue
            }
            guard allowed.contains(key) else {
                error(pair.key.location, "unknown key '\(key)'\(didYouMean(key, allowed))")
                continue
            }
            result[key] = pair
        }
        return result
    }

    mutating func string(_ node: YAMLNode, _ key: String) -> String? {
        guard case .scalar(let text, _) = node.kind, !node.isNull else {
            error(node.location, "expected a string for '\(key)', found \(node.kindDescription)")
            return nil
        }
        if Self.looksLikeAPIKey(text) {
            error(node.location, "'\(key)' looks like a FullStory API key; the manifest must not contain one: put it in the environment variable named by api.keyEnv (FULLSTORY_API_KEY by default)")
            return nil
        }
        return text
    }

    mutating func bool(_ node: YAMLNode, _ key: String) -> Bool? {
        switch node.scalar {
        case "true" where node.kind == .scalar("true", .plain): return true
        case "false" where node.kind == .scalar("false", .plain): return false
        default:
            error(node.location, "expected true or false for '\(key)', found \(node.kindDescription)")
            return nil
        }
    }

    mutating func number(_ node: YAMLNode, _ key: String, range: ClosedRange<Double>) -> Double? {
        guard case .scalar(let text, .plain) = node.kind, let value = Double(text), range.contains(value) else {
            error(node.location, "expected a number between \(Self.plain(range.lowerBound)) and \(Self.plain(range.upperBound)) for '\(key)', found \(node.kindDescription)")
            return nil
        }
        return value
    }

    static func plain(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }

    mutating func span(_ node: YAMLNode, _ key: String, allowZero: Bool = false) -> Span? {
        guard let text = string(node, key) else { return nil }
        if allowZero, NameRules.isZero(text, units: "wdhm") { return Span() }
        guard let span = Span(text) else {
            error(node.location, "invalid duration '\(text)' for '\(key)': write a number and a unit, like 15m, 1h, 1d, 1w or 1d12h")
            return nil
        }
        return span
    }

    mutating func choice<E: RawRepresentable & CaseIterable>(_ node: YAMLNode, _ key: String, _: E.Type) -> E? where E.RawValue == String {
        guard let text = string(node, key) else { return nil }
        if let value = E(rawValue: text) { return value }
        let options = E.allCases.map(\.rawValue)
        error(node.location, "unknown \(key) '\(text)'\(didYouMean(text, options)); expected one of: \(options.joined(separator: ", "))")
        return nil
    }

    mutating func timeZone(_ node: YAMLNode) -> TimeZone? {
        guard let text = string(node, "timezone") else { return nil }
        if text == "UTC" || text == "Etc/UTC" { return TimeZone(identifier: "UTC") }
        let known = TimeZone.knownTimeZoneIdentifiers
        // The known list can miss current names (Asia/Kolkata); a zone the system can load
        // under its own name is fine too.
        if let zone = TimeZone(identifier: text), known.contains(text) || (text.contains("/") && zone.identifier == text) { return zone }
        error(node.location, "unknown time zone '\(text)'\(didYouMean(text, known + ["UTC"])); use an IANA name like UTC, Europe/Paris or America/New_York")
        return nil
    }

    static func looksLikeAPIKey(_ text: String) -> Bool {
        // FullStory keys are region-prefixed base64 blobs: `na1.AbC...`, `eu1.XyZ...`.
        let lowered = text.lowercased()
        guard lowered.hasPrefix("na1.") || lowered.hasPrefix("eu1.") else { return false }
        return text.count >= 24 && !text.contains(" ") && !text.contains("/")
    }
}
