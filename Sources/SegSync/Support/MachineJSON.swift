import Foundation

/// A document a command prints for machines (`--json`). It does not carry its format
/// version: ``MachineJSON`` adds `format_version` to every one, said once, there.
public protocol MachineDocument: Encodable {}

/// The JSON documents segsync prints for machines (`--json`): every one carries
/// `format_version`, encoded with ``StateJSON``'s configuration (sorted keys, RFC 3339).
public enum MachineJSON {
    /// Bumped only when a field changes meaning or goes away; new fields may appear
    /// within a version.
    public static let formatVersion = 1

    /// A pretty-printed document, its `format_version` added, and a newline.
    public static func pretty(_ document: some MachineDocument) throws -> String {
        String(decoding: try StateJSON.encoder.encode(Versioned(body: document)), as: UTF8.self) + "\n"
    }

    /// One line (JSON Lines), its `format_version` added.
    public static func line(_ document: some MachineDocument) throws -> String {
        String(decoding: try StateJSON.lineEncoder.encode(Versioned(body: document)), as: UTF8.self) + "\n"
    }

    /// A document that is also a file read back (a saved plan), which keeps its version as
    /// a field of its own: pretty-printed as it is.
    public static func file(_ value: some Encodable) throws -> String {
        String(decoding: try StateJSON.encoder.encode(value), as: UTF8.self) + "\n"
    }

    /// `body`'s keys and `format_version` in one object (keys are sorted on output).
    struct Versioned<Body: Encodable>: Encodable {
        enum Key: String, CodingKey { case formatVersion = "format_version" }
        let body: Body

        func encode(to encoder: any Encoder) throws {
            try body.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(MachineJSON.formatVersion, forKey: .formatVersion)
        }
    }
}
