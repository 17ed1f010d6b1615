/// What a segment export contains: the people matching the segment, or their events.
public enum ExportType: String, Sendable, Hashable, CaseIterable, Codable {
    case individuals
    case events
}

/// The file format of an export. `ndjson` exists in the production dialect only.
public enum ExportFormat: String, Sendable, Hashable, CaseIterable, Codable {
    case json
    case csv
    case ndjson
}
