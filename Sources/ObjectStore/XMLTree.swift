import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// An XML answer as a tree of elements: names without namespace prefixes; a leaf keeps its
/// text exactly (an object key may start or end with a space), a parent keeps none.
/// Unknown elements are kept and ignored by whoever does not ask for them.
package struct XMLTree: Sendable {
    package var name: String
    package var text = ""
    package var children: [XMLTree] = []

    /// The first child named `name`.
    package func first(_ name: String) -> XMLTree? { children.first { $0.name == name } }

    /// Every child named `name`.
    package func all(_ name: String) -> [XMLTree] { children.filter { $0.name == name } }

    /// The text of the first child named `name`.
    package func text(_ name: String) -> String? { first(name)?.text }

    /// The root element of `bytes`, or nil when they are not well-formed XML.
    package static func parse(_ bytes: [UInt8]) -> XMLTree? {
        let builder = Builder()
        let parser = XMLParser(data: Data(bytes))
        parser.delegate = builder
        guard parser.parse() else { return nil }
        return builder.root
    }

    /// The text form of `value` inside an element.
    package static func escape(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [XMLTree] = []
        var root: XMLTree?

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            stack.append(XMLTree(name: name.split(separator: ":").last.map(String.init) ?? name))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if !stack.isEmpty { stack[stack.count - 1].text += string }
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            guard var element = stack.popLast() else { return }
            if !element.children.isEmpty { element.text = "" }
            if stack.isEmpty { root = element } else { stack[stack.count - 1].children.append(element) }
        }
    }
}
