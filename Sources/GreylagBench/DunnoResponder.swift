import NIOCore
import NIOPosix

/// A policy server that answers `DUNNO` to every request without deciding
/// anything: the ceiling of the machine and the load generator, against
/// which greylag's rate is compared.
public enum DunnoResponder {
    /// Binds and returns the server channel; close it to stop.
    public static func start(host: String, port: Int,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DunnoHandler())
                }
            }
            .bind(host: host, port: port).get()
    }
}

/// Counts blank lines (request ends) and answers each with `DUNNO`.
final class DunnoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var lastWasNewline = false
    private static let reply = "action=DUNNO\n\n"

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        var answers = 0
        for byte in buffer.readableBytesView {
            if byte != UInt8(ascii: "\n") {
                lastWasNewline = false
            } else if lastWasNewline {
                answers += 1  // an empty line ends a request
                lastWasNewline = false
            } else {
                lastWasNewline = true
            }
        }
        guard answers > 0 else { return }
        var out = context.channel.allocator.buffer(capacity: Self.reply.utf8.count * answers)
        for _ in 0..<answers { out.writeString(Self.reply) }
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }
}
