import Testing
@testable import SegSync

@Suite(.timeLimit(.minutes(2))) struct YAMLLoaderTests {
    func load(_ text: String) -> YAMLLoader.Result {
        YAMLLoader().load(text, file: "t.yaml")
    }

    @Test("every node carries its 1-based line and column")
    func locations() throws {
        let result = load("a: 1\nb:\n  - x\n  - { c: d }\n")
        let root = try #require(result.root)
        guard case .mapping(let pairs) = root.kind else { Issue.record("not a mapping"); return }
        #expect(pairs[0].key.location == SourceLocation(line: 1, column: 1))
        #expect(pairs[0].value.location == SourceLocation(line: 1, column: 4))
        guard case .sequence(let items) = pairs[1].value.kind else { Issue.record("not a sequence"); return }
        #expect(items[0].location == SourceLocation(line: 3, column: 5))
        guard case .mapping(let inner) = items[1].kind else { Issue.record("not a mapping"); return }
        #expect(inner[0].key.location == SourceLocation(line: 4, column: 7))
    }

    @Test("scalars keep their text: no YAML 1.1 booleans")
    func scalarsAreText() throws {
        let root = try #require(load("on: no\nyes: off\n").root)
        guard case .mapping(let pairs) = root.kind else { Issue.record("not a mapping"); return }
        #expect(pairs.map { $0.key.scalar } == ["on", "yes"])
        #expect(pairs.map { $0.value.scalar } == ["no", "off"])
    }

    @Test("duplicate keys are reported at the second one, naming the first")
    func duplicateKeys() {
        let result = load("a: 1\nb: 2\na: 3\n")
        #expect(result.diagnostics.map(\.description) == ["t.yaml:3:1: error: duplicate key 'a' (first defined at 1:1)"])
    }

    @Test("a second document is rejected")
    func multipleDocuments() {
        let result = load("a: 1\n---\nb: 2\n")
        #expect(result.root == nil)
        #expect(result.diagnostics.first?.location?.line == 2)
        #expect(result.diagnostics.first?.message.contains("second YAML document") == true)
    }

    @Test("a billion-laughs file ends in an error, not a hang")
    func billionLaughs() {
        var text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...9 {
            let refs = Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
            text += "a\(level): &a\(level) [\(refs)]\n"
        }
        // Refused by counting aliases as they are resolved, not by a time limit.
        let result = load(text)
        #expect(result.root == nil)
        #expect(result.diagnostics.first?.message.contains("more than") == true)
    }

    @Test("nesting deeper than the bound is refused")
    func deepNesting() {
        let text = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        let result = load(text)
        #expect(result.root == nil)
        #expect(result.diagnostics.first?.message.contains("nesting deeper") == true)
    }

    @Test("aliases within the budget expand to the anchored node")
    func aliases() throws {
        let root = try #require(load("base: &w { every: 1d }\nother: *w\n").root)
        guard case .mapping(let pairs) = root.kind else { Issue.record("not a mapping"); return }
        #expect(pairs[0].value.kind == pairs[1].value.kind)
    }

    @Test("syntax errors point at the problem")
    func syntaxError() {
        let result = load("a: [1, 2\nb: 3\n")
        #expect(result.root == nil)
        #expect(result.diagnostics.first?.message.hasPrefix("invalid YAML") == true)
        #expect(result.diagnostics.first?.location != nil)
    }
}
