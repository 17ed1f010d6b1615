/// ANSI colour for text meant for people, or none: the CLI decides once per run
/// (`NO_COLOR`, `--no-color`, a terminal or not) and renderers take the result.
public struct Paint: Sendable, Equatable {
    public var enabled: Bool

    public init(enabled: Bool) { self.enabled = enabled }

    public static let none = Paint(enabled: false)

    /// The SGR codes segsync uses.
    public enum Color: String, Sendable {
        case red = "31", green = "32", yellow = "33", blue = "34", cyan = "36", dim = "2", bold = "1"
    }

    /// `text` in `color` when painting is enabled; as it is otherwise (and when empty).
    public func callAsFunction(_ text: String, _ color: Color) -> String {
        enabled && !text.isEmpty ? "\u{1B}[\(color.rawValue)m\(text)\u{1B}[0m" : text
    }

    /// The colour of a plan symbol: additions green, changes yellow, removals red.
    public func kind(_ text: String, _ kind: Plan.Kind) -> String {
        switch kind {
        case .create, .download: return self(text, .green)
        case .resume, .finalize, .adopt: return self(text, .cyan)
        case .repair, .replace: return self(text, .yellow)
        case .prune: return self(text, .red)
        }
    }
}
