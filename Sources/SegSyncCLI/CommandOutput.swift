import SegSync

/// What a command prints, in one shape (as swiftly's `OutputData`): a document for
/// machines (`--json`; ``MachineJSON`` adds its `format_version`), the text people read,
/// and what `-q` leaves of it.
protocol CommandOutput {
    associatedtype Document: MachineDocument
    var document: Document { get }
    /// The text for people, in the context's colours and width.
    func text(_ output: Output) -> String
    /// What `-q` prints: the whole text unless the result has a shorter last line.
    func quiet(_ output: Output) -> String
}

extension CommandOutput {
    func quiet(_ output: Output) -> String { text(output) }
}

extension CommandContext {
    /// Prints `result` as the command's flags ask: the document with `--json`, else text.
    func print(_ result: some CommandOutput, json: Bool) throws {
        if json {
            out(try MachineJSON.pretty(result.document))
        } else {
            out(output.verbosity == .quiet ? result.quiet(output) : result.text(output))
        }
    }
}
