import Foundation

/// The one way to show a URL in a log line or an error message.
///
/// Signed download links carry their signature in the query string, and anyone holding
/// the full link can fetch the export until it expires: it is a bearer secret. So a
/// URL is shown as scheme, host, port and path only; a query or fragment is replaced by
/// a marker, and user information (`user:password@`) is dropped.
public func redacted(_ url: URL) -> String {
    guard var components = URLComponents(url: url, resolvingAgainstBaseURL: false) else {
        return "<unparseable URL>"
    }
    let hadQuery = components.percentEncodedQuery != nil
    let hadFragment = components.percentEncodedFragment != nil
    components.user = nil
    components.password = nil
    components.percentEncodedQuery = nil
    components.percentEncodedFragment = nil
    var shown = components.string ?? "<unparseable URL>"
    if hadQuery { shown += "?<redacted>" }
    if hadFragment { shown += "#<redacted>" }
    return shown
}

/// ``redacted(_:)-(URL)`` for a URL held as text, e.g. one read from a response body
/// before it was validated.
public func redacted(_ urlString: String) -> String {
    if let url = URL(string: urlString) {
        return redacted(url)
    }
    // Not a URL we can take apart: cut at the first query or fragment marker so a
    // signature can still not leak.
    let cut = urlString.firstIndex(where: { $0 == "?" || $0 == "#" })
    guard let cut else { return urlString }
    return String(urlString[..<cut]) + "?<redacted>"
}
