import Logging
import NIOCore
import NIOHTTPTypes

/// Bounds what one HTTP connection may hold: it counts against
/// `http.max_connections` (over the cap it is closed at once), and a
/// request whose body has not arrived `http.request_timeout` after its head
/// closes the connection. (A head that does not arrive within
/// `http.idle_timeout` of the connection or of the previous answer is
/// Hummingbird's idle timeout.)
final class HTTPConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let limit: ConnectionLimit
    private let requestTimeout: TimeAmount
    private let logger: Logger
    private var deadline: Scheduled<Void>?

    init(limit: ConnectionLimit, requestTimeout: TimeAmount, logger: Logger) {
        self.limit = limit
        self.requestTimeout = requestTimeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if !limit.admit(context.channel) { context.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            deadline?.cancel()
            let timeout = requestTimeout
            let logger = self.logger
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                let context = loopBound.value
                let peer = context.channel.remoteAddress.map(GreylagDaemon.describe) ?? "a unix socket peer"
                logger.warning("http: request from \(peer) not complete within \(timeout.nanoseconds / 1_000_000_000) s (http.request_timeout), closing")
                context.close(promise: nil)
            }
        case .end:
            deadline?.cancel()
            deadline = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }
}
