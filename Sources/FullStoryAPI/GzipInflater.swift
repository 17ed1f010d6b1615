import CompressNIO
import NIOCore
import FullStoryContract

/// Streaming gunzip: feed compressed chunks, get decompressed windows back, with a
/// fixed-size output window so memory stays flat.
///
/// Concatenated gzip members (RFC 1952 allows them) are decompressed one after another.
/// At the end, the last member's trailer (ISIZE, the length mod 2^32) is checked against
/// what was produced, so a stream that stopped early is caught even when the transport
/// did not notice; zlib itself checks each member's CRC-32.
final class GzipInflater {
    private let decompressor: ZlibDecompressor
    private var window: ByteBuffer
    private let shownURL: String
    /// The last 8 input bytes seen: the latest member's CRC-32 and ISIZE once it ends.
    private var tail: [UInt8] = []
    private var memberOutput: UInt32 = 0
    private var sawInput = false

    init(shownURL: String, windowSize: Int = 64 * 1024) throws {
        self.shownURL = shownURL
        do {
            decompressor = try ZlibDecompressor(algorithm: .gzip)
        } catch {
            throw FullStoryAPIError.invalidDownload(url: shownURL, reason: "gzip could not be set up (\(error))")
        }
        window = ByteBufferAllocator().buffer(capacity: windowSize)
    }

    func feed(_ chunk: ByteBuffer, emit: (ByteBuffer) throws -> Void) throws {
        guard chunk.readableBytes > 0 else { return }
        sawInput = true
        remember(chunk)
        var input = chunk
        var justReset = false
        while true {
            window.clear()
            var windowFull = false
            let before = input.readableBytes
            do {
                try decompressor.inflate(from: &input, to: &window)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                windowFull = true
            } catch let error as CompressNIOError where error == .inputBufferOverflow {
                // All input consumed, more needed: the next chunk continues it.
            } catch {
                throw FullStoryAPIError.invalidDownload(url: shownURL, reason: "the gzip data is corrupt")
            }
            if window.readableBytes > 0 {
                memberOutput &+= UInt32(truncatingIfNeeded: window.readableBytes)
                try emit(window)
            }
            if input.readableBytes != before || window.readableBytes > 0 { justReset = false }
            if windowFull { continue }
            if input.readableBytes == 0 { return }
            // zlib returned without consuming everything and without filling the window:
            // that only happens at the end of a member. Another member follows.
            if input.readableBytes == before && window.readableBytes == 0 && justReset {
                throw FullStoryAPIError.invalidDownload(
                    url: shownURL, reason: "there is data after the end of the gzip stream")
            }
            do {
                try decompressor.reset()
            } catch {
                throw FullStoryAPIError.invalidDownload(url: shownURL, reason: "the gzip stream could not be continued")
            }
            memberOutput = 0
            justReset = true
            continue
        }
    }

    /// Confirms the stream ended properly.
    func finish() throws {
        guard sawInput else {
            throw FullStoryAPIError.invalidDownload(url: shownURL, reason: "the body is empty, not gzip data")
        }
        guard tail.count == 8 else {
            throw FullStoryAPIError.invalidDownload(url: shownURL, reason: "the gzip data is too short")
        }
        let isize = UInt32(tail[4]) | UInt32(tail[5]) << 8 | UInt32(tail[6]) << 16 | UInt32(tail[7]) << 24
        guard isize == memberOutput else {
            throw FullStoryAPIError.invalidDownload(url: shownURL, reason: "the gzip data ends before its end marker")
        }
    }

    private func remember(_ chunk: ByteBuffer) {
        let count = min(8, chunk.readableBytes)
        if let last = chunk.getBytes(at: chunk.readerIndex + chunk.readableBytes - count, length: count) {
            tail.append(contentsOf: last)
            if tail.count > 8 { tail.removeFirst(tail.count - 8) }
        }
    }
}
