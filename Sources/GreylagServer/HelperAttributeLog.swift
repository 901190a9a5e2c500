import GreylagCore
import Logging
import PolicyProtocol
import Synchronization

/// Logs what one policy listener did with the qmail helpers' `greylag_*`
/// attributes: ignored (a listener not in `policy.helper_listen`) or thrown
/// away (a value out of range). The first note logs a warning with the
/// peer; further ones are summed into one line a minute at most, so a
/// client that sends them with every request cannot flood the log.
final class HelperAttributeLog: Sendable {
    /// The listener, as the log names it.
    let listener: String
    private let throttle: LogThrottle
    private let logger: Logger

    init(listener: String, logger: Logger, interval: Duration = .seconds(60)) {
        self.listener = listener
        self.logger = logger
        throttle = LogThrottle(every: interval)
    }

    /// Logs `notes` of one request from `peer`, or counts them until the next line is due.
    func note(_ notes: [PolicySession.HelperAttributeNote], peer: String) {
        guard !notes.isEmpty else { return }
        guard let n = throttle.due() else { return }
        let what = notes.map { note -> String in
            switch note {
            case .ignored(let names):
                return "ignored \(names.map { $0.logEscaped }.joined(separator: ", ")) (only listeners in "
                    + "policy.helper_listen take the qmail helpers' attributes)"
            case .invalid(let name, let value):
                return "ignored \(name.logEscaped)=\(String(value.prefix(64)).logEscaped) (not a value greylag takes"
                    + (name == "greylag_delay" ? ": 0 to \(PolicySession.maxHelperDelay) seconds" : "") + ")"
            }
        }.joined(separator: "; ")
        let line = "policy listener \(listener): request from \(peer): \(what)"
            + (n > 0 ? " (\(n) more such requests since the last message)" : "")
        logger.warning("\(line)")
    }
}
