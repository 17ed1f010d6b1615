/// A YAML node with the place it was written, so every later diagnostic can point at it.
///
/// Scalars are kept as the text the user wrote; the manifest schema decides what a
/// scalar means (`no` is a string where a string is expected, never a YAML 1.1 boolean).
public struct YAMLNode: Sendable, Hashable {
    /// How a scalar was written, which decides whether it may be read as a number or boolean.
    public enum Style: Sendable, Hashable {
        case plain, singleQuoted, doubleQuoted, literal, folded
    }

    /// One key and its value in a mapping, both with their positions.
    public struct Pair: Sendable, Hashable {
        public var key: YAMLNode
        public var value: YAMLNode
    }

    /// What the node is.
    public enum Kind: Sendable, Hashable {
        case scalar(String, Style)
        case mapping([Pair])
        case sequence([YAMLNode])
    }

    public var kind: Kind
    public var location: SourceLocation

    /// A plain `~`, `null`, or empty scalar: the YAML spelling of "nothing".
    public var isNull: Bool {
        if case .scalar(let text, .plain) = kind {
            return text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
        }
        return false
    }

    public var scalar: String? {
        if case .scalar(let text, _) = kind { return text }
        return nil
    }

    /// How the node reads in an error message: "a mapping", "the string 'x'".
    public var kindDescription: String {
        switch kind {
        case .scalar: return isNull ? "nothing (null)" : "'\(scalar!)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }
}
