import GreylagCore
import Logging
import NIOCore
import PolicyProtocol

/// Serves one policy connection: requests are answered in order, one at a
/// time, each after its decision (and the store commit behind it) is done.
///
/// The handler cuts the requests out of the bytes itself and writes its
/// replies as bytes: a request passed between handlers is boxed (it is
/// larger than NIO keeps inline), and each handler passed costs its call.
final class PolicyServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Asks the handler to close once the request in flight is answered.
    struct Drain: Sendable {}

    /// Requests a client may send ahead without waiting for answers.
    static let maxQueued = 64

    private var session: PolicySession
    private let service: GreylistService
    private let decisionTimeout: TimeAmount
    private let mailbox: EventLoopMailbox
    /// The generation of the service's replies `session.config` holds.
    private var repliesGeneration: UInt64 = 0
    private var logger: Logger
    private let helperLog: HelperAttributeLog
    private var peer = "local"
    private var context: ChannelHandlerContext?
    private var queue = InboundQueue(PolicyRequestDecoder(), limit: PolicyServerHandler.maxQueued)
    /// Replies not yet written (see `reply`).
    private var outbound = ReplyBuffer()
    /// Set when the connection is closing: nothing more is read from it.
    private var closing = false
    /// The request whose decision is awaited, with its query and time.
    private var pending = PendingDecision<(request: PolicyRequest, query: GreylistQuery, now: Int64)>()
    private var inputClosed = false
    private var draining = false

    init(session: PolicySession, service: GreylistService, decisionTimeout: TimeAmount, mailbox: EventLoopMailbox,
         logger: Logger, helperLog: HelperAttributeLog) {
        self.session = session
        self.helperLog = helperLog
        self.service = service
        self.decisionTimeout = decisionTimeout
        self.mailbox = mailbox
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        peer = context.channel.remoteAddress.map(GreylagDaemon.describe) ?? "local"
        logger[metadataKey: "greylag.peer"] = "\(peer)"
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        pending.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        decoded(context) { try $0.read(unwrapInboundIn(data)) }
    }

    /// Queues the requests `decode` finds, then answers them; closes the
    /// connection when the bytes are not a request or too many wait.
    private func decoded(_ context: ChannelHandlerContext,
                         _ decode: (inout InboundQueue<PolicyRequestDecoder>) throws -> Void) {
        do {
            try decode(&queue)
        } catch is InboundQueue<PolicyRequestDecoder>.Full {
            logger.warning("closing policy connection: more than \(Self.maxQueued) requests sent ahead of answers")
            close(context)
            return
        } catch {
            errorCaught(context: context, error: error)
            return
        }
        if !pending.isWaiting { processQueue() }
    }

    /// Closes the connection; what was read and not answered is dropped.
    private func close(_ context: ChannelHandlerContext) {
        closing = true
        queue.removeAll()
        context.close(promise: nil)
    }

    /// Adds `reply` to the replies to write.
    private func reply(_ reply: PolicyReply) {
        outbound.add { reply.write(into: &$0) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed:
            // The peer sent everything (Exim's readsocket half-closes): a
            // last request may end without its empty line. Answer, then close.
            guard !closing else { return }
            decoded(context) { try $0.finish() }
            if closing { return }  // what was left was not a request
            inputClosed = true
            if !pending.isWaiting && queue.isEmpty { context.close(promise: nil) }
        case is Drain:
            draining = true
            if !pending.isWaiting { context.close(promise: nil) }
        case let idle as IdleStateHandler.IdleStateEvent where idle == .read:
            if !pending.isWaiting {
                logger.debug("closing idle policy connection")
                context.close(promise: nil)
            }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? PolicyProtocolError {
            logger.warning("closing policy connection: \(error)")
        } else {
            logger.debug("policy connection error: \(error)")
        }
        close(context)
    }

    /// Answers queued requests until one needs a decision.
    private func processQueue() {
        guard let context else { return }
        while let request = queue.popFirst() {
            // Through `inout`: a method of `self.session` called directly
            // works on a copy of the whole session (all its reply texts).
            let (notes, action) = Self.received(request, by: &session)
            helperLog.note(notes, peer: peer)
            switch action {
            case .reply(let r):
                reply(r)
            case .decide(let query):
                outbound.flush(context)
                startDecision(query, request: request, context: context)
                return
            }
        }
        outbound.flush(context)
        if inputClosed || draining { context.close(promise: nil) }
    }

    private static func received(_ request: PolicyRequest, by session: inout PolicySession)
        -> ([PolicySession.HelperAttributeNote], PolicySession.Action) {
        (session.helperNotes(request), session.requestReceived(request))
    }

    private func startDecision(_ query: GreylistQuery, request: PolicyRequest, context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let now = service.now()
        let finished: @Sendable (Verdict, UInt64, Bool) -> Void = { verdict, token, timedOut in
            bound.value.decided(verdict, token: token, timedOut: timedOut)
        }
        let token = pending.begin((request, query, now))
        PendingDecision<Void>.ask(query, now: now, token: token, service: service, mailbox: mailbox, finished: finished)
        pending.armTimeout(token, timeout: decisionTimeout, loop: context.eventLoop, owner: self) { $0.timerFired() }
    }

    /// The connection's timeout timer fired (see `PendingDecision`).
    private func timerFired() {
        guard let context, let token = pending.timerFired(loop: context.eventLoop) else { return }
        decided(PendingDecision<Void>.timedOut(service: service, timeout: decisionTimeout), token: token, timedOut: true)
    }

    private func decided(_ verdict: Verdict, token: UInt64, timedOut: Bool) {
        guard let (request, query, now) = pending.finish(token) else { return }  // already answered
        service.log(verdict, query)
        guard let context else { return }
        let current = service.current
        if current.generation != repliesGeneration {  // a reload may have changed the wording
            session.config = current.replies
            repliesGeneration = current.generation
        }
        reply(session.verdictReceived(verdict, for: request, query: query, now: timedOut ? service.now() : now))
        processQueue()
    }
}
