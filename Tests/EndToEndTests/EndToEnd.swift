import Testing

/// Every suite that drives segsync end to end: commands run in-process (``CLI/run``) or
/// as the built executable, against emulators started as processes. Each suite runs its
/// tests one at a time; the suites run beside each other and beside the in-process
/// suites. No test holds a thread of the cooperative pool while a child runs: children
/// are awaited (``CLI/Running/exit()``, ``CLI/Drain/end()``, ``waitUntil(timeout:_:)``).
@Suite(.timeLimit(.minutes(15))) enum EndToEnd {}
