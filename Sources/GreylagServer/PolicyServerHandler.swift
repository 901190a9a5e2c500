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
    private var logger: Logger
    private var context: ChannelHandlerContext?
    private var queue = CircularBuffer<PolicyRequest>()
    /// The request whose decision is awaited, with its token.
    private var inFlight: (token: UInt64, request: PolicyRequest, query: GreylistQuery)?
    private var nextToken: UInt64 = 0
    private var timeoutTask: Scheduled<Void>?
    private var inputClosed = false
    private var draining = false

    init(session: PolicySession, service: GreylistService, decisionTimeout: TimeAmount, mailbox: EventLoopMailbox,
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
        timeoutTask?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if queue.count >= Self.maxQueued {
            logger.warning("closing policy connection: more than \(Self.maxQueued) requests sent ahead of answers")
            context.close(promise: nil)
            return
        }
        queue.append(unwrapInboundIn(data))
        if inFlight == nil { processQueue() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed:
            // The peer sent everything (Exim's readsocket half-closes): answer, then close.
            inputClosed = true
            if inFlight == nil && queue.isEmpty { context.close(promise: nil) }
        case is Drain:
            draining = true
            if inFlight == nil { context.close(promise: nil) }
        case let idle as IdleStateHandler.IdleStateEvent where idle == .read:
            if inFlight == nil {
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
        nextToken &+= 1
        let token = nextToken
        inFlight = (token, request, query)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let service = self.service
        let now = service.now()
        let mailbox = self.mailbox
        // Armed first: a decision that needs no store completes inside
        // `decide` and must find its own timeout to cancel.
        timeoutTask = loop.scheduleTask(in: decisionTimeout) {
            bound.value.timedOut(token: token)
        }
        service.decide(query, now: now) { verdict in
            mailbox.post { bound.value.decided(verdict, token: token, now: now) }
        }
    }

    private func timedOut(token: UInt64) {
        guard let pending = inFlight, pending.token == token else { return }
        logger.error("decision not ready after \(decisionTimeout.nanoseconds / 1_000_000) ms; applying failure mode")
        decided(service.failureVerdict(for: nil), token: token, now: service.now())
    }

    private func decided(_ verdict: Verdict, token: UInt64, now: Int64) {
        guard let pending = inFlight, pending.token == token else { return }  // already answered on timeout
        inFlight = nil
        timeoutTask?.cancel()
        timeoutTask = nil
        service.log(verdict, pending.query)
        guard let context else { return }
        session.config = service.replies  // a reload may have changed the wording
        let reply = session.verdictReceived(verdict, for: pending.request, now: now)
        context.write(wrapOutboundOut(reply), promise: nil)
        processQueue()
    }
}
