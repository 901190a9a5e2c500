import NIOCore

/// The channel handlers of the client's UDP and TCP tries.
extension DNSClient {
    /// Reads the datagrams of one UDP try: the first that answers the query
    /// from its server is passed on; anything else is dropped.
    final class UDPAnswerHandler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let server: SocketAddress
        let id: UInt16
        let name: String
        let type: DNSRecordType
        let k: Int
        let events: AsyncStream<Event>.Continuation
        var done = false

        init(server: SocketAddress, id: UInt16, name: String, type: DNSRecordType, try k: Int,
             events: AsyncStream<Event>.Continuation) {
            self.server = server
            self.id = id
            self.name = name
            self.type = type
            self.k = k
            self.events = events
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            guard !done, envelope.remoteAddress == server else { return }
            guard let m = envelope.data.readableBytesView.withContiguousStorageIfAvailable({
                try? DNSWire.decode(UnsafeRawBufferPointer($0))
            }) ?? (try? DNSWire.decode(Array(envelope.data.readableBytesView))),
                DNSClient.matches(m, id: id, name: name, type: type) else { return }
            done = true
            events.yield(m.truncated ? .truncated(k) : .answer(k, m))
            context.close(promise: nil)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // ICMP port unreachable and the like: this try is over.
            if !done {
                done = true
                events.yield(.failed(k))
            }
            context.close(promise: nil)
        }
    }

    /// Splits a TCP stream into DNS messages (RFC 1035 4.2.2: a two-byte length first).
    struct TCPFrameDecoder: ByteToMessageDecoder {
        typealias InboundOut = ByteBuffer

        mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
                  buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: 2)
            context.fireChannelRead(NIOAny(buffer.readSlice(length: Int(length))!))
            return .continue
        }
    }

    final class TCPAnswerHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let id: UInt16
        let name: String
        let type: DNSRecordType
        let k: Int
        let events: AsyncStream<Event>.Continuation
        var done = false

        init(id: UInt16, name: String, type: DNSRecordType, try k: Int, events: AsyncStream<Event>.Continuation) {
            self.id = id
            self.name = name
            self.type = type
            self.k = k
            self.events = events
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            guard !done else { return }
            done = true
            if let m = try? DNSWire.decode(Array(frame.readableBytesView)),
               DNSClient.matches(m, id: id, name: name, type: type), !m.truncated {
                events.yield(.answer(k, m))
            } else {
                events.yield(.failed(k))
            }
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !done {
                done = true
                events.yield(.failed(k))
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
