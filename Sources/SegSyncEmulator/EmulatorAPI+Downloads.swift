import Foundation
import Hummingbird
import Logging
import NIOCore

// Signed download links: checked, served whole or by range, paced, and cut short when
// the fault injector says so.
extension EmulatorAPI {

    func download(_ request: Request, _ context: EmulatorContext) async -> Response {
        let token = Self.parameter("token", context)
        let query = request.uri.queryParameters
        guard let spec = state.signer.open(token, as: ExportSpec.self),
            let expires = query["expires"].flatMap({ Int64($0) }),
            let signature = query["sig"].map(String.init),
            state.signer.isValidLinkSignature(signature, token: token, expires: expires)
        else {
            return error(403, "This download link is not valid (bad or missing signature).")
        }
        guard nowMilliseconds() < expires else {
            return error(410, "This download link has expired; ask for a new one.")
        }
        let file: ExportStore.File
        do {
            file = try await state.store.file(for: spec)
        } catch {
            state.configuration.logger.error("Could not generate an export file.", metadata: ["error": "\(error)"])
            return self.error(500, "The emulator could not generate this export.")
        }
        let rangeHeader = request.headers[.range]
        context.exchange.range = rangeHeader
        var (start, end, partial): (Int64, Int64, Bool) = (0, file.size - 1, false)
        if configuration.supportsRanges, let rangeHeader, let range = Self.byteRange(rangeHeader, size: file.size) {
            guard case .satisfiable(let first, let last) = range else {
                var response = error(416, "The requested range is outside the file.")
                response.headers[.contentRange] = "bytes */\(file.size)"
                return response
            }
            (start, end, partial) = (first, last, true)
        }
        var length = max(0, end - start + 1)
        var (fault, cut) = await injectedCut(length: length, partial: partial)
        if cut == nil, partial, length > 1, await state.faults.fires(.shortRange) {
            // Well framed (Content-Length says what is sent) and ended cleanly, but short
            // of the range Content-Range promises.
            (fault, length) = ("short", length / 2)
        }
        context.exchange.fault = fault
        var headers: HTTPFields = [
            .contentType: "application/gzip",
            .contentLength: String(length),
            .cacheControl: "no-store",
        ]
        if configuration.supportsRanges { headers[.acceptRanges] = "bytes" }
        if partial { headers[.contentRange] = "bytes \(start)-\(end)/\(file.size)" }
        // Opened now, so a cache eviction before the body is written cannot pull the file away.
        guard let handle = FileHandle(forReadingAtPath: file.path) else {
            return error(500, "The emulator lost the generated export file.")
        }
        let body = Self.body(handle, from: start, length: length, cutAt: cut, bytesPerSecond: configuration.downloadBytesPerSecond)
        return Response(status: partial ? .partialContent : .ok, headers: headers, body: body)
    }

    /// A truncated body or a dropped connection, when the fault injector says so: the
    /// fault's name and where the body stops.
    private func injectedCut(length: Int64, partial: Bool) async -> (fault: String?, cut: Int64?) {
        guard length > 1 else { return (nil, nil) }
        if await state.faults.fires(.truncate) { return ("truncate", await state.faults.cutPoint(of: length)) }
        if !partial, await state.faults.fires(.drop) { return ("drop", await state.faults.cutPoint(of: length)) }
        return (nil, nil)
    }

    /// `length` bytes of the file from `offset`, ending early (a closed connection) at
    /// `cutAt`, paced at `bytesPerSecond` when set.
    private static func body(_ handle: FileHandle, from offset: Int64, length: Int64, cutAt: Int64?, bytesPerSecond rate: Int?) -> ResponseBody {
        ResponseBody(contentLength: Int(length)) { writer in
            defer { try? handle.close() }
            var remaining = cutAt ?? length
            // A slow link: chunks of a tenth of a second each, paced.
            let chunk = rate.map { max(1024, $0 / 10) } ?? 256 * 1024
            var position = off_t(offset)
            while remaining > 0 {
                // Read straight into the buffer that is sent (no copy in between): the
                // emulator shares the benchmark machine's cores with the client it serves.
                let want = Int(min(remaining, Int64(chunk)))
                var buffer = ByteBufferAllocator().buffer(capacity: want)
                let count = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { bytes in
                    let got = pread(handle.fileDescriptor, bytes.baseAddress, want, position)
                    guard got >= 0 else { throw CocoaError(.fileReadUnknown) }
                    return got
                }
                if count == 0 { break }
                try await writer.write(buffer)
                position += off_t(count)
                remaining -= Int64(count)
                if let rate { try await Task.sleep(for: .seconds(Double(count) / Double(rate))) }
            }
            if cutAt != nil {
                // Headers promised `length` bytes; closing now is the injected fault.
                throw InjectedDisconnect()
            }
            try await writer.finish(nil)
        }
    }

    enum ByteRange: Equatable {
        case satisfiable(Int64, Int64)
        case unsatisfiable
    }

    /// A single `bytes=` range; `nil` (serve everything) for anything else, as RFC 9110 allows.
    static func byteRange(_ header: String, size: Int64) -> ByteRange? {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bytes="), !trimmed.contains(",") else { return nil }
        let spec = trimmed.dropFirst(6)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        if parts[0].isEmpty {
            guard let suffix = Int64(parts[1]), suffix > 0 else { return nil }
            return size == 0 ? .unsatisfiable : .satisfiable(max(0, size - suffix), size - 1)
        }
        guard let first = Int64(parts[0]) else { return nil }
        guard first < size else { return .unsatisfiable }
        let last = parts[1].isEmpty ? size - 1 : min(Int64(parts[1]) ?? -1, size - 1)
        guard last >= first else { return nil }
        return .satisfiable(first, last)
    }
}
