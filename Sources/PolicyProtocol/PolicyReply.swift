import NIOCore

/// One policy reply: `action=<ACTION text>` and an empty line.
public struct PolicyReply: Sendable, Hashable {
    /// The action with its text, e.g. `DUNNO` or `DEFER_IF_PERMIT Greylisted`.
    public var action: String

    public init(action: String) {
        self.action = action
    }

    public static let dunno = PolicyReply(action: "DUNNO")

    /// Writes the reply. CR and LF in the action are replaced by spaces: a
    /// newline would end the reply early and desynchronise the connection.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("action=")
        if action.utf8.contains(where: { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) {
            for byte in action.utf8 {
                buffer.writeInteger(byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") ? UInt8(ascii: " ") : byte)
            }
        } else {
            buffer.writeString(action)
        }
        buffer.writeStaticString("\n\n")
    }
}
