import GreylagCore
import Logging
import NIOCore

/// The one greylisting decision a connection waits for, shared by the
/// policy and milter handlers: a token per decision, a timeout armed while
/// the store works on it, the verdict handed back on the connection's event
/// loop, and exactly one finish, by the decision or by the timeout with the
/// failure mode's verdict.
struct PendingDecision<Payload> {
    private var nextToken: UInt64 = 0
    private var current: (token: UInt64, payload: Payload)?
    private var timeoutTask: Scheduled<Void>?

    /// A decision is awaited.
    var isWaiting: Bool { current != nil }

    /// Starts awaiting a decision; returns its token. Ask the service next
    /// (see `ask`), then call `armTimeout`.
    mutating func begin(_ payload: Payload) -> UInt64 {
        nextToken &+= 1
        current = (nextToken, payload)
        return nextToken
    }

    /// Arms the timeout of decision `token` if it is still awaited, which
    /// calls `finished` on `loop` with the failure mode's verdict. Armed after
    /// the service was asked: a decision that needs no store (a whitelisted
    /// client, a non-RCPT stage) has finished by then and costs no timer.
    /// The store's answer cannot overtake it, as it reaches the connection
    /// through its event loop, which is running this call.
    mutating func armTimeout(_ token: UInt64, service: GreylistService, timeout: TimeAmount, loop: any EventLoop,
                             finished: @escaping @Sendable (Verdict, UInt64, _ timedOut: Bool) -> Void) {
        guard current?.token == token, timeoutTask == nil else { return }
        timeoutTask = loop.scheduleTask(in: timeout) {
            // The store did not answer in time: one more failure for its health.
            service.health.failed(Self.timeoutReason(timeout),
                                  startedAt: StoreHealth.now() &- UInt64(timeout.nanoseconds))
            finished(service.failureVerdict(for: nil), token, true)
        }
    }

    /// Asks the service to decide `query` and hands the verdict to
    /// `finished` through the event loop's mailbox. Not `mutating`: the
    /// verdict may arrive (and `finish` run) before it returns.
    static func ask(_ query: GreylistQuery, now: Int64, token: UInt64, service: GreylistService,
                    mailbox: EventLoopMailbox, finished: @escaping @Sendable (Verdict, UInt64, _ timedOut: Bool) -> Void) {
        service.decide(query, now: now) { verdict in
            mailbox.post { finished(verdict, token, false) }
        }
    }

    /// Ends the decision `token` and returns its payload; nil when it was
    /// already ended (the timeout answered first, or the decision did).
    mutating func finish(_ token: UInt64) -> Payload? {
        guard let c = current, c.token == token else { return nil }
        current = nil
        timeoutTask?.cancel()
        timeoutTask = nil
        return c.payload
    }

    /// The connection goes away: no timeout is left behind.
    mutating func cancel() {
        timeoutTask?.cancel()
        timeoutTask = nil
    }

    /// Why the failure mode answered when the timeout did.
    private static func timeoutReason(_ timeout: TimeAmount) -> String {
        "decision not ready after \(timeout.nanoseconds / 1_000_000) ms"
    }
}
