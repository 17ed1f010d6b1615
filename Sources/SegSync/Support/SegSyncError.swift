/// An error a user can act on: one sentence saying what went wrong and what to do.
public struct SegSyncError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
