import GreylagCore
import Logging
import NIOCore

/// The one greylisting decision a connection waits for, shared by the
/// policy and milter handlers: a token per decision, a timeout while the
/// store works on it, the verdict handed back on the connection's event
/// loop, and exactly one finish, by the decision or by the timeout with the
/// failure mode's verdict.
///
/// The timeout costs no timer per decision: a connection has one timer,
/// armed at the deadline of the decision it was armed for. When it fires
/// and a later decision is awaited, it is armed again at that one's
/// deadline; when none is, it stays unarmed. Scheduling and cancelling a
/// task per decision cost more than a tenth of a decision's CPU.
struct PendingDecision<Payload> {
    private var nextToken: UInt64 = 0
    private var current: (token: UInt64, payload: Payload)?
    /// When the awaited decision times out (see `armTimeout`).
    private var deadline: NIODeadline?
    /// The connection's timer, when armed.
    private var timer: Scheduled<Void>?
    /// What the timer runs (see `armTimeout`).
    private var fire: (@Sendable () -> Void)?

    /// A decision is awaited.
    var isWaiting: Bool { current != nil }

    /// Starts awaiting a decision; returns its token. Ask the service next
    /// (see `ask`), then call `armTimeout`.
    mutating func begin(_ payload: Payload) -> UInt64 {
        nextToken &+= 1
        current = (nextToken, payload)
        deadline = nil
        return nextToken
    }

    /// Gives decision `token`, if it is still awaited, `timeout` from now.
    /// When the connection's timer fires, `fired` is called with `owner`
    /// (the handler) on `loop` and must call `timerFired`. Armed after the
    /// service was asked: a decision that needs no store (a whitelisted
    /// client, a non-RCPT stage) has finished by then and needs no timeout.
    /// The store's answer cannot overtake it, as it reaches the connection
    /// through its event loop, which is running this call.
    mutating func armTimeout<Owner: AnyObject>(_ token: UInt64, timeout: TimeAmount, loop: any EventLoop, owner: Owner,
                                               fired: @escaping @Sendable (Owner) -> Void) {
        guard current?.token == token else { return }
        let due = NIODeadline.now() + timeout
        deadline = due
        guard timer == nil else { return }
        if fire == nil {  // made once per connection; `cancel` lets go of it (it holds the owner)
            let bound = NIOLoopBound(owner, eventLoop: loop)
            fire = { fired(bound.value) }
        }
        timer = loop.scheduleTask(deadline: due, fire!)
    }

    /// The connection's timer fired: the token of the awaited decision
    /// when its deadline has passed (answer it with the failure mode, see
    /// `timedOut`); nil when none is awaited or its deadline is still
    /// ahead, the timer then armed again for it.
    mutating func timerFired(loop: any EventLoop) -> UInt64? {
        timer = nil
        guard let c = current, let due = deadline, let fire else { return nil }
        if due <= .now() { return c.token }
        timer = loop.scheduleTask(deadline: due, fire)
        return nil
    }

    /// Records a decision that timed out after `timeout` as a failure of
    /// the store and returns the failure mode's verdict for it.
    static func timedOut(service: GreylistService, timeout: TimeAmount) -> Verdict {
        service.health.failed(timeoutReason(timeout), startedAt: StoreHealth.now() &- UInt64(timeout.nanoseconds))
        return service.failureVerdict(for: nil)
    }

    /// Asks the service to decide `query` and hands the verdict to
    /// `finished` through the event loop's mailbox. Not `mutating`: the
    /// verdict may arrive (and `finish` run) before it returns.
    static func ask(_ query: GreylistQuery, now: Int64, token: UInt64, service: GreylistService,
                    mailbox: EventLoopMailbox, finished: @escaping @Sendable (Verdict, UInt64, _ timedOut: Bool) -> Void) {
        service.decide(query, now: now) { verdict in
            // On the loop already (the store's writer runs there): no task to make.
            if mailbox.loop.inEventLoop {
                finished(verdict, token, false)
            } else {
                mailbox.post { finished(verdict, token, false) }
            }
        }
    }

    /// Ends the decision `token` and returns its payload; nil when it was
    /// already ended (the timeout answered first, or the decision did).
    /// The timer stays armed: it finds nothing late when it fires.
    mutating func finish(_ token: UInt64) -> Payload? {
        guard current?.token == token, let c = current.take() else { return nil }  // moved out, not copied
        deadline = nil
        return c.payload
    }

    /// The connection goes away: no timer is left behind.
    mutating func cancel() {
        timer?.cancel()
        timer = nil
        fire = nil
    }

    /// Why the failure mode answered when the timeout did.
    private static func timeoutReason(_ timeout: TimeAmount) -> String {
        "decision not ready after \(timeout.nanoseconds / 1_000_000) ms"
    }
}
