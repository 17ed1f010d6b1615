/// The pieces every command's `--help` is made of, so the environment variables are
/// described once and read the same everywhere.
enum Help {
    static let variables: [(name: String, meaning: String)] = [
        ("FULLSTORY_API_KEY", "the API key (or the variable api.keyEnv names); never written anywhere"),
        ("FULLSTORY_API_URL", "overrides the manifest's endpoint; `emulator` runs the built-in one"),
        ("SEGSYNC_DATABASE_URL", "PostgreSQL connection string for state.backend: postgres (or the variable state.urlEnv names)"),
        ("SEGSYNC_STATE_TIMEOUT", "how long a PostgreSQL state call may take (default 30s) before the run stops"),
        ("SEGSYNC_DEBUG", "set: as -v, log every API call, retry, 429 wait and relink on standard error"),
        ("NO_COLOR", "set: no colour (as --no-color; output that is not a terminal has none either)"),
        ("CLICOLOR_FORCE", "set to 1: colour even when output is not a terminal"),
        ("COLUMNS", "the width status folds its coverage strips to (default: the terminal's)"),
        ("GITHUB_STEP_SUMMARY", "a file plan and apply append a Markdown summary to, also when nothing changed"),
        ("GITHUB_ACTIONS", "\"true\": failures and warnings are also ::error/::warning annotations"),
    ]

    /// `Environment:` and one aligned line per variable named.
    static func environment(_ names: String...) -> String {
        let width = names.map(\.count).max() ?? 0
        let lines = names.map { name in
            let meaning = variables.first { $0.name == name }?.meaning ?? ""
            return "  " + name.padded(to: width + 2) + meaning
        }
        return "Environment:\n" + lines.joined(separator: "\n")
    }

    /// `Examples:` and one command per line.
    static func examples(_ lines: String...) -> String {
        "Examples:\n" + lines.map { "  " + $0 }.joined(separator: "\n")
    }

    /// Discussion paragraphs, then the blocks, a blank line between each.
    static func text(_ parts: String...) -> String {
        parts.joined(separator: "\n\n")
    }
}
