import Testing

/// Every suite that drives the built executables, one test at a time. Such a test blocks
/// its thread while a child process runs (`waitUntilExit`, pipe reads); several at once
/// would take every thread of the cooperative pool on a 2-core machine and starve the
/// in-process async tests running beside them.
@Suite(.serialized) enum EndToEnd {}
