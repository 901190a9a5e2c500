import GreylagCore
import Logging
import NIOCore

/// The one greylisting decision a connection waits for, shared by the
/// policy and milter handlers: a token per decision, a timeout armed before
/// the decision starts, the verdict handed back on the connection's event
/// loop, and exactly one finish, by the decision or by the timeout with the
/// failure mode's verdict.
struct PendingDecision<Payload> {
    private var nextToken: UInt64 = 0
    private var current: (token: UInt64, payload: Payload)?
    private var timeoutTask: Scheduled<Void>?

    /// A decision is awaited.
    var isWaiting: Bool { current != nil }

    /// Starts awaiting a decision and arms its timeout, which calls
    /// `finished` on `loop` with the failure mode's verdict; returns the
    /// token. Call it before asking the service (see `ask`): a decision that
    /// needs no store completes inside the call and must find its timeout.
    mutating func begin(_ payload: Payload, service: GreylistService, timeout: TimeAmount, loop: any EventLoop,
                        finished: @escaping @Sendable (Verdict, UInt64, _ timedOut: Bool) -> Void) -> UInt64 {
        nextToken &+= 1
        let token = nextToken
        current = (token, payload)
        timeoutTask = loop.scheduleTask(in: timeout) {
            // The store did not answer in time: one more failure for its health.
            service.health.failed(Self.timeoutReason(timeout),
                                  startedAt: StoreHealth.now() &- UInt64(timeout.nanoseconds))
            finished(service.failureVerdict(for: nil), token, true)
        }
        return token
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
