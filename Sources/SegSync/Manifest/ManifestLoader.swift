import Crypto
import Foundation
import SegSyncVocabulary

/// Reads `segsync.yaml`: YAML through libyaml, then the schema, reporting every problem
/// it finds in one pass with its line and column.
public enum ManifestLoader {
    /// Loads and validates the manifest at `path` (relative to `directory`, the process's
    /// working directory when nil); throws ``DiagnosticsError`` listing every problem, or
    /// ``SegSyncError`` when the file cannot be read. Messages name `path` as given.
    public static func load(path: String, in directory: String? = nil) throws -> Manifest {
        let file = Layout.absolute(path, in: directory)
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: file, isDirectory: &isFolder), isFolder.boolValue {
            throw SegSyncError("\(path) is a folder; pass the manifest file itself, like -f \(path)/segsync.yaml.")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            let exists = FileManager.default.fileExists(atPath: file)
            throw SegSyncError(exists
                ? "cannot read the manifest \(path); check its permissions."
                : "no manifest at \(path); write a starter one with `segsync init`, or pass -f PATH (a file, or a folder holding segsync.yaml).")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw DiagnosticsError([Diagnostic(.error, file: path, at: nil, "the manifest is not valid UTF-8 text")])
        }
        let (manifest, diagnostics) = decode(text, file: path)
        if let manifest, !diagnostics.contains(where: { $0.severity == .error }) {
            return manifest
        }
        throw DiagnosticsError(diagnostics)
    }

    /// Decodes manifest text. Returns the manifest only when there are no errors.
    public static func decode(_ text: String, file: String) -> (Manifest?, [Diagnostic]) {
        let loaded = YAMLLoader().load(text, file: file)
        guard let root = loaded.root else {
            if loaded.diagnostics.isEmpty {
                return (nil, [Diagnostic(.error, file: file, at: nil, "the manifest is empty; it needs at least 'version: 1' and 'exports'")])
            }
            return (nil, loaded.diagnostics)
        }
        var decoder = ManifestDecoder(file: file)
        decoder.diagnostics = loaded.diagnostics
        let manifest = decoder.manifest(root, sha256: SHA256.hex(Data(text.utf8)))
        let hasErrors = decoder.diagnostics.contains { $0.severity == .error }
        let sorted = DiagnosticsError(decoder.diagnostics).diagnostics
        var decoded = manifest
        decoded?.file = file
        decoded?.warnings = sorted.filter { $0.severity != .error }
        return (hasErrors ? nil : decoded, sorted)
    }
}
