import Foundation
import GreylagCore
import GreylagStore
import GreylistdProtocol
import Logging
import NIOCore
import Synchronization

/// Answers greylistd requests with greylag's engine and store (see
/// `GreylistdRequest` for the grammar and README "greylistd's socket").
///
/// Data requests (`update`, `check`, `status`) are anyone's who can open
/// the socket; `add`, `delete`, `list`, `clear` and `reload` need the
/// daemon's authority: a unix socket peer whose kernel-given uid is 0 or
/// the daemon's own. greylistd itself lets anyone who can connect do
/// everything; on greylag the MTA's group may ask but not change lists.
final class GreylistdResponder: Sendable {
    private let service: GreylistService
    private let logger: Logger
    private let decisionTimeout: TimeAmount
    private let started: Int64
    private let host: String

    init(service: GreylistService, decisionTimeout: TimeAmount, logger: Logger) {
        self.service = service
        self.decisionTimeout = decisionTimeout
        self.logger = logger
        self.started = service.now()
        self.host = GreylagDaemon.hostName()
    }

    /// Who sent a request: for the log, and whether it has authority.
    struct Peer: Sendable {
        var description: String
        var authorised: Bool
    }

    /// The answer to one request, as greylistd writes it: a word with no
    /// newline (`white`, `true`, ...), or lines for `stats` and `mrtg`.
    func answer(_ request: GreylistdRequest, from peer: Peer, loop: any EventLoop) async -> String {
        do throws(GreylistdRequest.Failure) {
            if request.needsAuthority && !peer.authorised {
                logger.warning("greylistd socket: \(request.command.rawValue) refused to \(peer.description): only root or greylag's own user may change or list the data")
                throw GreylistdRequest.Failure("permission denied: \(request.command.rawValue) needs root or greylag's own user")
            }
            switch request.command {
            case .update, .check, .status:
                return try await decide(request, loop: loop)
            case .add, .delete:
                return try await change(request, by: peer)
            case .stats:
                return try await stats()
            case .mrtg:
                let counts = service.counters.snapshot()
                return [String(counts.byReason[DecisionReason.newTriplet.rawValue] ?? 0),
                        String(counts.byReason[DecisionReason.delayElapsed.rawValue] ?? 0),
                        DurationText.format(max(0, service.now() - started)), host, ""].joined(separator: "\n")
            case .save:
                return "greylistd data has been saved"
            case .list:
                throw GreylistdRequest.Failure("list is not served here: use `greylag list`")
            case .clear:
                throw GreylistdRequest.Failure("clear is not served here: use `greylag delete`")
            case .reload:
                throw GreylistdRequest.Failure("reload is not served here: use `greylag reload`")
            }
        } catch {
            return error.answer
        }
    }

    private func decide(_ request: GreylistdRequest, loop: any EventLoop) async throws(GreylistdRequest.Failure) -> String {
        let test = try request.truthTest()
        guard !request.words.isEmpty else { throw GreylistdRequest.Failure("Missing argument") }
        let data = GreylistdData(words: request.words)
        let query = data.query()
        let record = request.command == .update
        let verdict = await decision(query, key: data.key, record: record, loop: loop)
        if record { service.log(verdict, query) }
        if request.command == .status && verdict.reason == .newTriplet { return "unseen" }
        if verdict.reason == .storeUnavailable {
            logger.warning("greylistd socket: store unavailable, answering \(GreylistdRequest.state(of: verdict.action).rawValue) for \(data)")
        }
        return GreylistdRequest.answer(GreylistdRequest.state(of: verdict.action), test: test)
    }

    /// The verdict, or the failure mode's when the store takes longer than
    /// the decision timeout.
    private func decision(_ query: GreylistQuery, key: Triplet?, record: Bool, loop: any EventLoop) async -> Verdict {
        let service = self.service
        let timeout = decisionTimeout
        return await withCheckedContinuation { (continuation: CheckedContinuation<Verdict, Never>) in
            let once = Once(continuation)
            let finish: @Sendable (Verdict) -> Void = { once.resume($0) }
            let timer = loop.scheduleTask(in: timeout) {
                service.health.failed("decision not ready after \(timeout.nanoseconds / 1_000_000) ms",
                                      startedAt: StoreHealth.now() &- UInt64(timeout.nanoseconds))
                finish(service.failureVerdict(for: nil))
            }
            service.decide(query, key: key, record: record, now: service.now()) { verdict in
                timer.cancel()
                finish(verdict)
            }
        }
    }

    private func change(_ request: GreylistdRequest, by peer: Peer) async throws(GreylistdRequest.Failure) -> String {
        guard !request.words.isEmpty else { throw GreylistdRequest.Failure("Missing argument") }
        let data = GreylistdData(words: request.words)
        guard let triplet = data.triplet(engine: service.engine) else {
            throw GreylistdRequest.Failure("no recipient in: \(request.words.joined(separator: " "))")
        }
        let now = service.now()
        let store = service.store
        let answer: String
        do {
            let existing = try await store.record(for: triplet).flatMap { $0.recordExpires >= now ? $0 : nil }
            if request.command == .delete {
                guard let existing, try await store.delete(triplet) else { throw GreylistdRequest.Failure("Not found") }
                answer = "Removed from \(existing.hasPassed ? "white" : "grey")list"
            } else {
                let policy = service.engine.policy
                let record: GreylistRecord
                switch try request.addState() {
                case .white:
                    record = GreylistRecord(triplet: triplet, firstSeen: now, lastSeen: now, blockExpires: now,
                                            recordExpires: now.saturatingAdd(policy.passTTL), blockedCount: 0,
                                            passedCount: 1, origin: .manual)
                case .grey:
                    record = GreylistRecord(triplet: triplet, firstSeen: now, lastSeen: now,
                                            blockExpires: now.saturatingAdd(policy.delay),
                                            recordExpires: now.saturatingAdd(policy.retryWindow), blockedCount: 1,
                                            passedCount: 0, origin: .manual)
                case .black:
                    throw GreylistdRequest.Failure("greylag keeps no blacklisted triplets: refuse by client, sender or recipient with `greylag blacklist add FIELD VALUE`")
                }
                if existing != nil { _ = try await store.delete(triplet) }
                try await store.importState(records: [record], clients: [])
                answer = "Added to \(record.hasPassed ? "white" : "grey")list"
            }
        } catch let failure as GreylistdRequest.Failure {
            throw failure
        } catch {
            logger.error("greylistd socket: \(request.command.rawValue) by \(peer.description) failed: \(error)")
            throw GreylistdRequest.Failure("the store failed: \(error)")
        }
        logger.notice("admin change by greylistd socket \(peer.description): \(request.command.rawValue) \(triplet.description.logEscaped): \(answer)")
        return answer
    }

    private func stats() async throws(GreylistdRequest.Failure) -> String {
        let counts: StoreCounts
        do {
            counts = try await service.store.counts(now: service.now())
        } catch {
            throw GreylistdRequest.Failure("the store failed: \(error)")
        }
        let since = DurationText.format(max(0, service.now() - started))
        let title = "Statistics of greylag \(GreylagVersion.string) (started \(since) ago)"
        return [title, String(repeating: "-", count: title.count),
                "\(counts.passed) items are currently whitelisted",
                "\(counts.pending) items are currently greylisted",
                "0 items are currently blacklisted (greylag refuses by list rules, not by triplet)",
                "\(counts.clients) client networks passed greylisting", ""].joined(separator: "\n")
    }
}

/// A continuation resumed once, by whichever of the decision and its timeout comes first.
private final class Once: Sendable {
    private let continuation: Mutex<CheckedContinuation<Verdict, Never>?>

    init(_ continuation: CheckedContinuation<Verdict, Never>) {
        self.continuation = Mutex(continuation)
    }

    func resume(_ verdict: Verdict) {
        continuation.withLock { c in
            c?.resume(returning: verdict)
            c = nil
        }
    }
}
