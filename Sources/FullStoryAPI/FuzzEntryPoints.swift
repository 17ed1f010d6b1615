import Foundation
import SegSyncVocabulary
import FullStoryContract

/// Every decoder of text a server sends, reachable by the fuzz targets in `Fuzz/` (and
/// nothing else: import with `@_spi(Fuzzing)`). Each returns normally or throws; a trap
/// is a bug.
@_spi(Fuzzing)
public enum ServerText {
    /// Which decoder a fuzz input goes to: its first byte, modulo the count.
    public enum Decoder: UInt8, CaseIterable, Sendable {
        case operation, segmentList, segment, exportResults, errorBody, retryAfter, contentRange, timestamp
    }

    /// Runs `decoder` over `bytes` as the client would, through every derived value a
    /// caller reads (descriptions, arithmetic), so a trap anywhere downstream shows.
    public static func decode(_ decoder: Decoder, _ bytes: Data) {
        let text = String(decoding: bytes, as: UTF8.self)
        let json = JSONDecoder()
        switch decoder {
        case .operation:
            guard let operation = try? json.decode(WireOperation.self, from: bytes).operation else { return }
            _ = operation.estimatePctComplete.map { Int($0.rounded()) }
            _ = operation.state.rawValue
            _ = operation.results?.downloadURL.map { try? APIEndpoint.validate($0.absoluteString, use: .downloadLink) }
            _ = [operation.createdAt, operation.finishedAt, operation.results?.expires].compactMap { $0 }.map(Timestamp.format)
        case .segmentList:
            _ = (try? json.decode(WireSegmentList.self, from: bytes))?.page.segments.map { $0.created.map(Timestamp.format) }
        case .segment:
            _ = (try? json.decode(WireSegment.self, from: bytes))?.segment.created.map(Timestamp.format)
        case .exportResults:
            guard let results = try? json.decode(WireExportResults.self, from: bytes) else { return }
            _ = try? APIEndpoint.validate(results.location, source: "the download link", use: .downloadLink)
            _ = redacted(results.location)
            _ = results.expires.map(Timestamp.format)
        case .errorBody:
            _ = WireError.message(in: bytes).map { FullStoryAPIError.badRequest(message: $0).description }
        case .retryAfter:
            if let wait = RetryPolicy.readRetryAfter(text, now: Date(timeIntervalSince1970: 1_800_000_000))?.wait {
                _ = FullStoryAPIError.format(wait)
                _ = RetryPolicy().decision(after: .status(429, retryAfter: wait), kind: .idempotent, attempt: 1, elapsed: .zero)
            }
        case .contentRange:
            if let range = ContentRange(text) {
                _ = range.total.map { $0.addingReportingOverflow(range.end) }
            }
        case .timestamp:
            if let date = Timestamp.parse(text) { _ = Timestamp.format(date) }
        }
    }
}
