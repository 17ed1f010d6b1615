extension String {
    /// The string followed by spaces up to `width` characters; a longer string is kept
    /// whole (unlike Foundation's `padding(toLength:withPad:startingAt:)`, which cuts it,
    /// and is slow enough to show in a plan of 36,500 lines).
    public func padded(to width: Int) -> String {
        let missing = width - count
        return missing > 0 ? self + String(repeating: " ", count: missing) : self
    }
}

/// The names a manifest allows, checked byte by byte (ASCII only): the same rules the
/// error messages state, without compiling a regular expression for every export.
public enum NameRules {
    static func letter(_ byte: UInt8) -> Bool { (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") }
    static func digit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    static func lower(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") }
    static func punctuation(_ byte: UInt8) -> Bool { byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") }

    static func matches(_ text: String, first: (UInt8) -> Bool, rest: (UInt8) -> Bool, maxLength: Int = .max) -> Bool {
        guard let head = text.utf8.first, first(head), text.utf8.count <= maxLength else { return false }
        return text.utf8.dropFirst().allSatisfy(rest)
    }

    /// An environment variable's name: `[A-Za-z_][A-Za-z0-9_]*`.
    public static func isVariable(_ text: String) -> Bool {
        matches(text, first: { letter($0) || $0 == UInt8(ascii: "_") }, rest: { letter($0) || digit($0) || $0 == UInt8(ascii: "_") })
    }

    /// A state workspace: `[A-Za-z0-9][A-Za-z0-9._-]{0,62}`.
    public static func isWorkspace(_ text: String) -> Bool {
        matches(text, first: { letter($0) || digit($0) }, rest: { letter($0) || digit($0) || punctuation($0) }, maxLength: 63)
    }

    /// An export: `[a-z0-9][a-z0-9._-]*`, at most 100 characters.
    public static func isExport(_ text: String) -> Bool {
        matches(text, first: { lower($0) || digit($0) }, rest: { lower($0) || digit($0) || punctuation($0) }, maxLength: 100)
    }

    /// A zero duration, whatever its unit: `0`, `00`, `0m`, `0s` (`units` are the letters allowed).
    public static func isZero(_ text: String, units: String) -> Bool {
        let digits = text.last.map { units.contains($0) } == true ? text.dropLast() : Substring(text)
        return !digits.isEmpty && digits.allSatisfy { $0 == "0" }
    }
}
