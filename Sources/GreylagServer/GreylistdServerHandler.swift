import Foundation
import GreylistdProtocol
import Logging
import NIOCore

/// Serves one connection on a greylistd-compatible socket: one request,
/// one answer, then the connection is closed.
///
/// The request ends at the client's half-close (Exim's `readsocket`), at a
/// newline, or when no more bytes come within `settle` of the last ones
/// (greylistd answers its first `recv`, and `greylist(1)` neither
/// half-closes nor sends a newline). A request longer than
/// `GreylistdRequest.maxBytes`, or none within `requestTimeout`, is logged
/// and the connection closed without an answer.
final class GreylistdServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long the handler waits for more bytes after the last ones.
    static let settle = TimeAmount.milliseconds(200)
    /// Seconds a client may take to send its request.
    static let requestTimeout: Int64 = 10

    private let responder: GreylistdResponder
    private let logger: Logger
    private var received = ByteBuffer()
    private var settleTimer: Scheduled<Void>?
    private var answering = false
    private var peer = "local"

    init(responder: GreylistdResponder, logger: Logger) {
        self.responder = responder
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        peer = context.channel.remoteAddress.flatMap { $0.protocol == .unix ? nil : GreylagDaemon.describe($0) } ?? "local"
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        settleTimer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answering else { return }
        var chunk = unwrapInboundIn(data)
        received.writeBuffer(&chunk)
        if let nl = received.readableBytesView.firstIndex(of: UInt8(ascii: "\n")),
           nl - received.readerIndex <= GreylistdRequest.maxBytes {
            received.moveWriterIndex(to: nl)
            requestEnded(context: context)
            return
        }
        guard received.readableBytes <= GreylistdRequest.maxBytes else {
            logger.warning("greylistd socket: request from \(peer) longer than \(GreylistdRequest.maxBytes) bytes, closing")
            answering = true
            context.close(promise: nil)
            return
        }
        settleTimer?.cancel()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        settleTimer = context.eventLoop.scheduleTask(in: Self.settle) {
            let (handler, context) = bound.value
            handler.requestEnded(context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed:
            requestEnded(context: context)
        case let idle as IdleStateHandler.IdleStateEvent where idle == .read:
            guard !answering else { return }
            logger.warning("greylistd socket: no request from \(peer) within \(Self.requestTimeout) s, closing")
            answering = true
            context.close(promise: nil)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("greylistd connection error: \(error)")
        context.close(promise: nil)
    }

    /// The request is complete: parse it, answer it, close.
    private func requestEnded(context: ChannelHandlerContext) {
        guard !answering else { return }
        answering = true
        settleTimer?.cancel()
        settleTimer = nil
        let channel = context.channel
        let loop = context.eventLoop
        let request: GreylistdRequest
        do {
            request = try GreylistdRequest.parse(received.readableBytesView)
        } catch {
            logger.warning("greylistd socket: bad request from \(peer): \(error.message)")
            Self.write(error.answer, on: channel)
            return
        }
        Self.respond(request, responder: responder, peer: peer, channel: channel, loop: loop)
    }

    /// Answers `request` from a task of its own and closes the connection.
    private static func respond(_ request: GreylistdRequest, responder: GreylistdResponder, peer: String,
                                channel: any Channel, loop: any EventLoop) {
        Task {
            let who = await GreylistdServerHandler.peer(channel, fallback: peer)
            let answer = await responder.answer(request, from: who, loop: loop)
            GreylistdServerHandler.write(answer, on: channel)
        }
    }

    /// Who is on the other end: a unix peer's uid and pid, and whether it
    /// is root or the daemon's own user.
    static func peer(_ channel: any Channel, fallback: String) async -> GreylistdResponder.Peer {
        guard channel.remoteAddress?.protocol != .inet && channel.remoteAddress?.protocol != .inet6,
              let credentials = await PeerCredentials.unixCredentials(channel) else {
            return .init(description: fallback, authorised: false)
        }
        return .init(description: "uid \(credentials.uid) pid \(credentials.pid)",
                     authorised: credentials.uid == 0 || credentials.uid == geteuid())
    }

    private static func write(_ answer: String, on channel: any Channel) {
        let buffer = channel.allocator.buffer(string: answer)
        channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
    }
}
