import GreylagCore
import Logging
import NIOCore
import PolicyProtocol

/// Serves one policy connection: requests are answered in order, one at a
/// time, each after its decision (and the store commit behind it) is done.
final class PolicyServerHandler: ChannelInboundHandler {
    typealias InboundIn = PolicyRequest
    typealias OutboundOut = PolicyReply

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
    private var queue = CircularBuffer<PolicyRequest>()
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
        if queue.count >= Self.maxQueued {
            logger.warning("closing policy connection: more than \(Self.maxQueued) requests sent ahead of answers")
            context.close(promise: nil)
            return
        }
        queue.append(unwrapInboundIn(data))
        if !pending.isWaiting { processQueue() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed:
            // The peer sent everything (Exim's readsocket half-closes): answer, then close.
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
        context.close(promise: nil)
    }

    /// Answers queued requests until one needs a decision.
    private func processQueue() {
        guard let context else { return }
        while let request = queue.popFirst() {
            helperLog.note(session.helperNotes(request), peer: peer)
            switch session.requestReceived(request) {
            case .reply(let reply):
                context.write(wrapOutboundOut(reply), promise: nil)
            case .decide(let query):
                context.flush()
                startDecision(query, request: request, context: context)
                return
            }
        }
        context.flush()
        if inputClosed || draining { context.close(promise: nil) }
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
        let reply = session.verdictReceived(verdict, for: request, query: query, now: timedOut ? service.now() : now)
        context.write(wrapOutboundOut(reply), promise: nil)
        processQueue()
    }
}
