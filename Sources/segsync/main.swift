import SegSyncCLI

#if canImport(Glibc)
import Glibc

// Buffers of a MiB and more (download batches, 8 MiB upload parts) are mapped and given
// back to the system when freed. By default glibc raises this threshold as such buffers
// are freed, after which they come from the heap, which keeps what it grew to: a 1 GiB
// export into a bucket peaked 16 MiB higher than a 100 MiB one (benchmarks/run, s3rss).
// `mallopt` is in <malloc.h>, which the Glibc module leaves out: looked up by name.
if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") {
    typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
    let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
    _ = unsafeBitCast(symbol, to: MallOpt.self)(mmapThreshold, 1 << 20)
}
#endif

await SegSyncCLI.main()
