extension String {
    /// The string followed by spaces up to `width` characters; a longer string is kept
    /// whole (unlike Foundation's `padding(toLength:withPad:startingAt:)`, which cuts it,
    /// and is slow enough to show in a plan of 36,500 lines).
    public func padded(to width: Int) -> String {
        let missing = width - count
        return missing > 0 ? self + String(repeating: " ", count: missing) : self
    }
}
