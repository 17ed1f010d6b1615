import Foundation

/// The JSON documents segsync prints for machines (`--json`): every one carries
/// `format_version`, encoded with ``StateJSON``'s configuration (sorted keys, RFC 3339).
public enum MachineJSON {
    /// Bumped only when a field changes meaning or goes away; new fields may appear
    /// within a version.
    public static let formatVersion = 1

    /// A pretty-printed document and a newline.
    public static func pretty(_ value: some Encodable) throws -> String {
        String(decoding: try StateJSON.encoder.encode(value), as: UTF8.self) + "\n"
    }

    /// One line (JSON Lines).
    public static func line(_ value: some Encodable) throws -> String {
        String(decoding: try StateJSON.lineEncoder.encode(value), as: UTF8.self) + "\n"
    }
}
