import GreylagCore
import Logging
import Milter
import NIOCore

/// Serves one milter connection: commands are handled in order; a RCPT
/// waits for its decision (and the store commit behind it) before the
/// commands after it are looked at.
///
/// The handler cuts and parses the packets itself and writes its replies
/// as bytes: a command or reply passed between handlers is boxed (most are
/// larger than NIO keeps inline), four allocations of a milter decision,
/// and the replies of one step go out in one buffer.
final class MilterServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Commands an MTA may send ahead of a pending answer (macros, mostly).
    static let maxQueued = 64

    private var session: MilterSession
    private let service: GreylistService
    private let decisionTimeout: TimeAmount
    private let mailbox: EventLoopMailbox
    /// The generation of the service's replies `session.config` holds.
    private var repliesGeneration: UInt64 = 0
    private var logger: Logger
    private var context: ChannelHandlerContext?
    private var queue = InboundQueue(MilterDecoder(), limit: MilterServerHandler.maxQueued)
    /// Replies not yet written (see `reply`).
    private var outbound = ReplyBuffer()
    /// Set when the connection is closing: nothing more is read from it.
    private var closing = false
    /// The RCPT whose decision is awaited.
    private var pending = PendingDecision<GreylistQuery>()
    private var draining = false

    init(session: MilterSession, service: GreylistService, decisionTimeout: TimeAmount, mailbox: EventLoopMailbox,
         logger: Logger) {
        self.session = session
        self.service = service
        self.decisionTimeout = decisionTimeout
        self.mailbox = mailbox
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let peer = context.channel.remoteAddress.map(GreylagDaemon.describe) ?? "local"
        logger[metadataKey: "greylag.peer"] = "\(peer)"
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        pending.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        do {
            try queue.read(unwrapInboundIn(data))
        } catch is InboundQueue<MilterDecoder>.Full {
            logger.warning("closing milter connection: more than \(Self.maxQueued) commands sent ahead of answers")
            close(context)
            return
        } catch {
            errorCaught(context: context, error: error)
            return
        }
        if !pending.isWaiting { processQueue() }
    }

    /// Closes the connection; what was read and not handled is dropped.
    private func close(_ context: ChannelHandlerContext) {
        closing = true
        queue.removeAll()
        context.close(promise: nil)
    }

    /// Adds `response` to the replies to write.
    private func reply(_ response: MilterResponse) {
        outbound.add { response.write(into: &$0) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is PolicyServerHandler.Drain:
            draining = true
            if !pending.isWaiting { context.close(promise: nil) }
        case let idle as IdleStateHandler.IdleStateEvent where idle == .read:
            if !pending.isWaiting {
                logger.debug("closing idle milter connection")
                context.close(promise: nil)
            }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? MilterProtocolError {
            logger.warning("closing milter connection: \(error)")
        } else {
            logger.debug("milter connection error: \(error)")
        }
        close(context)
    }

    private func processQueue() {
        guard let context else { return }
        while let command = queue.popFirst() {
            if case .quit = command {
                outbound.flush(context)
                close(context)
                return
            }
            let action = session.received(command, now: service.now())
            for notice in session.takeNotices() { logger.info("\(notice)") }
            for warning in session.takeWarnings() { logger.warning("\(warning)") }
            switch action {
            case .none:
                continue
            case .reply(let replies):
                for r in replies { reply(r) }
            case .decide(let query):
                outbound.flush(context)
                startDecision(query, context: context)
                return
            }
        }
        outbound.flush(context)
        if draining { close(context) }
    }

    private func startDecision(_ query: GreylistQuery, context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let finished: @Sendable (Verdict, UInt64, Bool) -> Void = { verdict, token, timedOut in
            bound.value.decided(verdict, token: token, timedOut: timedOut)
        }
        let token = pending.begin(query)
        PendingDecision<Void>.ask(query, now: service.now(), token: token, service: service, mailbox: mailbox,
                                  finished: finished)
        pending.armTimeout(token, timeout: decisionTimeout, loop: context.eventLoop, owner: self) { $0.timerFired() }
    }

    /// The connection's timeout timer fired (see `PendingDecision`).
    private func timerFired() {
        guard let context, let token = pending.timerFired(loop: context.eventLoop) else { return }
        decided(PendingDecision<Void>.timedOut(service: service, timeout: decisionTimeout), token: token, timedOut: true)
    }

    private func decided(_ verdict: Verdict, token: UInt64, timedOut _: Bool) {
        guard let query = pending.finish(token) else { return }  // already answered
        service.log(verdict, query)
        guard let context else { return }
        let current = service.current
        if current.generation != repliesGeneration {  // a reload may have changed the wording
            session.config = current.milterReplies
            repliesGeneration = current.generation
        }
        if session.isDecidingHeld {
            // A recipient of a null-sender message, decided at DATA or end of message.
            switch session.heldVerdictReceived(verdict, now: service.now()) {
            case .decide(let next):
                startDecision(next, context: context)
                return
            case .reply(let replies):
                for r in replies { reply(r) }
            case .none:
                break
            }
        } else {
            reply(session.verdictReceived(verdict))
        }
        processQueue()
    }
}
