import NIOCore

/// What a connection sent and has not had answered yet: the requests or
/// commands `Decoder` cuts from its bytes, in order, at most `limit` of
/// them. A handler runs it itself rather than a decoder in the pipeline,
/// where NIO boxes what passes between handlers when it is larger than
/// three words.
struct InboundQueue<Decoder: NIOSingleStepByteToMessageDecoder> {
    /// More than `limit` waited.
    struct Full: Error {}

    private let processor: NIOSingleStepByteToMessageProcessor<Decoder>
    private var items = CircularBuffer<Decoder.InboundOut>()
    let limit: Int

    init(_ decoder: Decoder, limit: Int) {
        processor = NIOSingleStepByteToMessageProcessor(decoder)
        self.limit = limit
    }

    /// Queues what `bytes` complete. Throws `Full`, or the decoder's error
    /// when the bytes are not the protocol's.
    mutating func read(_ bytes: ByteBuffer) throws {
        try processor.process(buffer: bytes) { try append($0) }
    }

    /// The peer sent everything: queues what the bytes left still make.
    mutating func finish() throws {
        try processor.finishProcessing(seenEOF: true) { try append($0) }
    }

    private mutating func append(_ item: Decoder.InboundOut) throws {
        guard items.count < limit else { throw Full() }
        items.append(item)
    }

    mutating func popFirst() -> Decoder.InboundOut? { items.popFirst() }

    /// Drops everything queued (the connection is closing).
    mutating func removeAll() { items.removeAll() }

    var isEmpty: Bool { items.isEmpty }
}
