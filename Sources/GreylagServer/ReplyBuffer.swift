import NIOCore

/// The replies of one step of a connection, written to it in one buffer.
/// The buffer is kept: once the socket has taken its bytes, `clear()`
/// finds it unshared and resets it in place instead of a new one being
/// allocated for the next step (a write that still holds it gets a copy,
/// as any shared `ByteBuffer` does).
struct ReplyBuffer {
    private var bytes = ByteBuffer()

    /// Adds a reply: `write` appends its bytes.
    mutating func add(_ write: (inout ByteBuffer) -> Void) {
        if bytes.readableBytes == 0 { bytes.clear() }
        write(&bytes)
    }

    /// Writes the replies added so far, if any, then flushes. The
    /// channel's outbound type must be `ByteBuffer`.
    mutating func flush(_ context: ChannelHandlerContext) {
        if bytes.readableBytes > 0 {
            context.write(NIOAny(bytes), promise: nil)
            bytes.moveReaderIndex(to: bytes.writerIndex)
        }
        context.flush()
    }
}
