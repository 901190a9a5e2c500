import Foundation
import GreylagCore
import GreylagStore
import Logging
import Synchronization

/// Answers greylisting queries for every protocol: engine rules, the store,
/// the failure mode when the store cannot answer, and one log line per
/// decision.
public final class GreylistService: Sendable {
    private let engineBox: Mutex<Engine>
    public let store: any GreylistStore
    public let failureMode: GreylagConfiguration.FailureMode
    private let logger: Logger
    /// The wall clock in Unix seconds; tests pass a manual one.
    public let now: @Sendable () -> Int64

    public init(policy: GreylistPolicy, store: any GreylistStore,
                failureMode: GreylagConfiguration.FailureMode = .pass, logger: Logger,
                clock: @escaping @Sendable () -> Int64 = unixNow) {
        self.engineBox = Mutex(Engine(policy: policy))
        self.store = store
        self.failureMode = failureMode
        self.logger = logger
        self.now = clock
    }

    /// The engine in force (replaced on reload).
    public var engine: Engine {
        get { engineBox.withLock { $0 } }
        set { engineBox.withLock { $0 = newValue } }
    }

    /// Decides one query at `now` and calls `completion` with the verdict,
    /// synchronously when no store lookup is needed, else from the store's
    /// thread once the change is committed. The caller logs the decision.
    public func decide(_ query: GreylistQuery, now: Int64, completion: @escaping @Sendable (Verdict) -> Void) {
        let engine = self.engine
        switch engine.prepare(query) {
        case .decided(let verdict):
            completion(verdict)
        case .lookup(let triplet):
            store.decide(triplet, now: now, { engine.decide(triplet, state: $0, now: now) }) { result in
                switch result {
                case .success(let decision):
                    completion(decision.verdict)
                case .failure(let error):
                    self.logger.error("store failed, \(self.failureMode == .pass ? "passing" : "deferring"): \(error)",
                                      metadata: ["greylag.client": "\(query.clientAddress)"])
                    completion(self.failureVerdict(for: triplet))
                }
            }
        }
    }

    /// The verdict the failure mode gives when the store cannot answer.
    public func failureVerdict(for triplet: Triplet?) -> Verdict {
        switch failureMode {
        case .pass: return Verdict(action: .pass, reason: .storeUnavailable, triplet: triplet)
        case .defer: return Verdict(action: .defer, reason: .storeUnavailable, timeLeft: 0, triplet: triplet)
        }
    }

    /// One line per decision: verdict, client, sender, recipient, reason, delay.
    public func log(_ verdict: Verdict, _ query: GreylistQuery) {
        let level: Logger.Level = verdict.reason == .notRecipientStage ? .debug : .info
        guard logger.logLevel <= level else { return }
        let word: String
        switch verdict.action {
        case .pass: word = verdict.wouldDefer ? "would defer (dry run), passing" : "pass"
        case .defer: word = "defer"
        case .reject: word = "reject"
        }
        var line = "\(word): client=\(query.clientAddress.logEscaped)"
        if let t = verdict.triplet { line += " network=\(t.network)" }
        line += " sender=<\(query.sender.logEscaped)> recipient=<\(query.recipient.logEscaped)>"
        line += " reason=\(verdict.reason.rawValue)"
        if let left = verdict.timeLeft, verdict.action == .defer || verdict.wouldDefer { line += " retry_in=\(left)s" }
        if let delayed = verdict.delayed { line += " delayed=\(delayed)s" }
        line += " via=\(query.origin)"
        logger.log(level: level, "\(line)")
    }
}

/// The wall clock in Unix seconds.
@Sendable public func unixNow() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec)
}
