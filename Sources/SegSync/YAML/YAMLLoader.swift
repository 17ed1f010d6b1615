import CYAML

/// Loads one YAML document into a ``YAMLNode`` tree through the system libyaml.
///
/// Defensive by design, because a manifest is input: duplicate keys are reported, a
/// second document is rejected, nesting is bounded, and alias expansion is counted so a
/// "billion laughs" file ends in an error instead of exhausting memory.
public struct YAMLLoader: Sendable {
    public var maxDepth = 64
    /// Upper bound on nodes after alias expansion.
    public var maxNodes = 200_000

    public init() {}

    /// The result of a load: the tree (if the file parsed) and every problem found.
    public struct Result: Sendable {
        public var root: YAMLNode?
        public var diagnostics: [Diagnostic]
    }

    /// Parses `text` with libyaml into a node tree with positions; every problem (syntax,
    /// duplicate keys, anchors, too deep or too large) is a diagnostic naming `file`.
    public func load(_ text: String, file: String) -> Result {
        var session = Session(file: file, maxDepth: maxDepth, maxNodes: maxNodes)
        return session.run(text)
    }
}

private struct LoadFailure: Error {
    var diagnostic: Diagnostic
}

private struct Session {
    let file: String
    let maxDepth: Int
    let maxNodes: Int
    /// On the heap, not in this struct: libyaml keeps pointers into its parser, and an
    /// `inout` of a Swift value may hand it a temporary copy.
    var parser: UnsafeMutablePointer<yaml_parser_t>!
    var anchors: [String: (node: YAMLNode, weight: Int)] = [:]
    var nodeCount = 0
    var diagnostics: [Diagnostic] = []

    init(file: String, maxDepth: Int, maxNodes: Int) {
        self.file = file
        self.maxDepth = maxDepth
        self.maxNodes = maxNodes
    }

    mutating func run(_ text: String) -> YAMLLoader.Result {
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else {
            return .init(root: nil, diagnostics: [Diagnostic(.error, file: file, at: nil, "could not start the YAML parser (out of memory?)")])
        }
        self.parser = parser
        defer {
            yaml_parser_delete(parser)
            self.parser = nil
        }
        // libyaml reads the input through this pointer until the parse ends: the buffer
        // stays alive (and in place) for the whole closure.
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer -> YAMLLoader.Result in
            yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
            do {
                let root = try parseStream()
                return .init(root: root, diagnostics: diagnostics)
            } catch let failure as LoadFailure {
                return .init(root: nil, diagnostics: diagnostics + [failure.diagnostic])
            } catch {
                return .init(root: nil, diagnostics: diagnostics + [Diagnostic(.error, file: file, at: nil, "\(error)")])
            }
        }
    }

    // MARK: Events

    /// One libyaml event, copied out so the C memory can be freed at once.
    enum Event {
        case streamStart, streamEnd, documentStart, documentEnd
        case alias(anchor: String)
        case scalar(value: String, style: YAMLNode.Style, anchor: String?)
        case sequenceStart(anchor: String?)
        case sequenceEnd
        case mappingStart(anchor: String?)
        case mappingEnd
    }

    mutating func next() throws -> (Event, SourceLocation) {
        var event = yaml_event_t()
        guard yaml_parser_parse(parser, &event) == 1 else {
            throw LoadFailure(diagnostic: parserError())
        }
        defer { yaml_event_delete(&event) }
        let location = SourceLocation(line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
        func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            pointer.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
        }
        let converted: Event
        switch event.type {
        case YAML_STREAM_START_EVENT: converted = .streamStart
        case YAML_STREAM_END_EVENT: converted = .streamEnd
        case YAML_DOCUMENT_START_EVENT: converted = .documentStart
        case YAML_DOCUMENT_END_EVENT: converted = .documentEnd
        case YAML_ALIAS_EVENT: converted = .alias(anchor: string(event.data.alias.anchor) ?? "")
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let value = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            let style: YAMLNode.Style
            switch scalar.style {
            case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = .singleQuoted
            case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = .doubleQuoted
            case YAML_LITERAL_SCALAR_STYLE: style = .literal
            case YAML_FOLDED_SCALAR_STYLE: style = .folded
            default: style = .plain
            }
            converted = .scalar(value: value, style: style, anchor: string(scalar.anchor))
        case YAML_SEQUENCE_START_EVENT: converted = .sequenceStart(anchor: string(event.data.sequence_start.anchor))
        case YAML_SEQUENCE_END_EVENT: converted = .sequenceEnd
        case YAML_MAPPING_START_EVENT: converted = .mappingStart(anchor: string(event.data.mapping_start.anchor))
        case YAML_MAPPING_END_EVENT: converted = .mappingEnd
        default:
            throw LoadFailure(diagnostic: Diagnostic(.error, file: file, at: location, "unexpected YAML event"))
        }
        return (converted, location)
    }

    func parserError() -> Diagnostic {
        let mark = parser.pointee.problem_mark
        let location = SourceLocation(line: Int(mark.line) + 1, column: Int(mark.column) + 1)
        var message = parser.pointee.problem.map { String(cString: $0) } ?? "invalid YAML"
        if let context = parser.pointee.context.map({ String(cString: $0) }) {
            message = "\(message) \(context)"
        }
        return Diagnostic(.error, file: file, at: location, "invalid YAML: \(message)")
    }

    // MARK: Tree

    mutating func parseStream() throws -> YAMLNode? {
        guard case (.streamStart, _) = try next() else {
            throw LoadFailure(diagnostic: Diagnostic(.error, file: file, at: nil, "not a YAML stream"))
        }
        let (first, _) = try next()
        guard case .documentStart = first else {
            return nil  // An empty stream: the caller reports an empty file.
        }
        let (event, location) = try next()
        let root = try node(from: event, at: location, depth: 1)
        guard case (.documentEnd, _) = try next() else {
            throw LoadFailure(diagnostic: Diagnostic(.error, file: file, at: location, "unexpected content after the document"))
        }
        let (after, afterLocation) = try next()
        if case .documentStart = after {
            throw LoadFailure(diagnostic: Diagnostic(
                .error, file: file, at: afterLocation,
                "a second YAML document starts here; the manifest must be a single document"))
        }
        return root
    }

    mutating func count(_ weight: Int, at location: SourceLocation) throws {
        nodeCount += weight
        if nodeCount > maxNodes {
            throw LoadFailure(diagnostic: Diagnostic(
                .error, file: file, at: location,
                "the document expands to more than \(maxNodes) nodes (aliases referring to aliases?); refusing to load it"))
        }
    }

    /// Builds the node that starts with `event`, returning it with its expanded weight.
    mutating func node(from event: Event, at location: SourceLocation, depth: Int) throws -> YAMLNode {
        try weighted(from: event, at: location, depth: depth).node
    }

    mutating func weighted(from event: Event, at location: SourceLocation, depth: Int) throws -> (node: YAMLNode, weight: Int) {
        if depth > maxDepth {
            throw LoadFailure(diagnostic: Diagnostic(.error, file: file, at: location, "nesting deeper than \(maxDepth) levels; refusing to load it"))
        }
        switch event {
        case .scalar(let value, let style, let anchor):
            try count(1, at: location)
            let node = YAMLNode(kind: .scalar(value, style), location: location)
            if let anchor { anchors[anchor] = (node, 1) }
            return (node, 1)
        case .alias(let anchor):
            guard let (node, weight) = anchors[anchor] else {
                throw LoadFailure(diagnostic: Diagnostic(.error, file: file, at: location, "unknown alias '*\(anchor)'"))
            }
            try count(weight, at: location)
            return (node, weight)
        case .sequenceStart(let anchor):
            try count(1, at: location)
            var items: [YAMLNode] = []
            var weight = 1
            while true {
                let (child, childLocation) = try next()
                if case .sequenceEnd = child { break }
                let item = try weighted(from: child, at: childLocation, depth: depth + 1)
                items.append(item.node)
                weight += item.weight
            }
            let node = YAMLNode(kind: .sequence(items), location: location)
            if let anchor { anchors[anchor] = (node, weight) }
            return (node, weight)
        case .mappingStart(let anchor):
            try count(1, at: location)
            var pairs: [YAMLNode.Pair] = []
            var seen: [String: SourceLocation] = [:]
            var weight = 1
            while true {
                let (keyEvent, keyLocation) = try next()
                if case .mappingEnd = keyEvent { break }
                let key = try weighted(from: keyEvent, at: keyLocation, depth: depth + 1)
                let (valueEvent, valueLocation) = try next()
                let value = try weighted(from: valueEvent, at: valueLocation, depth: depth + 1)
                weight += key.weight + value.weight
                if let text = key.node.scalar {
                    if let first = seen[text] {
                        diagnostics.append(Diagnostic(
                            .error, file: file, at: keyLocation,
                            "duplicate key '\(text)' (first defined at \(first))"))
                        continue
                    }
                    seen[text] = keyLocation
                }
                pairs.append(.init(key: key.node, value: value.node))
            }
            let node = YAMLNode(kind: .mapping(pairs), location: location)
            if let anchor { anchors[anchor] = (node, weight) }
            return (node, weight)
        case .sequenceEnd, .mappingEnd, .documentEnd, .documentStart, .streamEnd, .streamStart:
            throw LoadFailure(diagnostic: Diagnostic(.error, file: file, at: location, "unexpected end of a YAML structure"))
        }
    }
}
