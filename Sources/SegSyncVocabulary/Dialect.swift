/// Which flavour of the Segments Export API a server speaks.
///
/// `seed` is the published contract (`segments-export-openapi.yml`); `fullstory` is the
/// production service as it behaves in practice (upper-case enums, `{"operationId"}` on
/// create, `searchExportId` plus a second call for the download link, no RUNNING state).
/// Requests are encoded for the chosen dialect; responses are decoded tolerantly in both.
public enum Dialect: String, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    case seed
    case fullstory

    public var description: String { rawValue }
}
