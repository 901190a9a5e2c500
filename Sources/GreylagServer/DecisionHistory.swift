import GreylagCore
import GreylagStore
import Logging
import Synchronization

/// One recent decision, as the dashboard lists it.
public struct RecentDecision: Sendable, Hashable, Codable {
    public var time: Int64
    /// pass, defer, reject, or "would defer" (dry run).
    public var action: String
    public var reason: String
    public var client: String
    public var sender: String
    public var recipient: String
    public var via: String
    /// Seconds since first sighting, on the first pass after a delay.
    public var delayed: Int64?
    /// Seconds until a retry passes, for a defer.
    public var retryIn: Int64?
    /// The DNS list zones that listed the client, sender or HELO name.
    public var zones: [String] = []
    /// The SPF result, when SPF was checked.
    public var spf: String? = nil
}

/// Counts decisions per hour for the dashboard and keeps the most recent
/// ones, in memory, until `flush` adds the counts to the store's history.
///
/// The series, by verdict: `deferred` (a defer, or a dry-run pass that
/// would have been one), `passed` (greylisting satisfied: first pass after
/// the delay or a known triplet), `whitelisted` (passed without greylisting:
/// lists, authentication, trusted networks, client auto-whitelist, recipient
/// scope), `rejected` (blacklist) and `other` (no usable address or
/// recipient, store unavailable). Queries before the recipient stage are
/// not counted.
///
/// Two more: `new` counts new triplets deferred in the hour they were first
/// seen, and `returned` counts, in that same hour, those whose sender came
/// back after the delay, so the share that never came back is known once
/// the retry window of an hour is over. `return:N` counts first passes
/// after a delay of at most N seconds (`return:inf`: longer than the last
/// bound), in the hour of the pass.
public final class DecisionHistory: Sendable {
    public enum Series: String, Sendable, CaseIterable {
        case deferred, passed, whitelisted, rejected, other
    }

    public static let newTriplets = "new"
    public static let returned = "returned"
    /// Upper bounds, in seconds, of the return-delay buckets.
    public static let returnBounds: [Int64] = [300, 600, 900, 1800, 3600, 7200, 4 * 3600, 12 * 3600, 86_400, 2 * 86_400]
    /// The history name of the bucket holding `delay` seconds.
    public static func returnBucket(_ delay: Int64) -> String {
        returnBounds.first { delay <= $0 }.map { "return:\($0)" } ?? "return:inf"
    }

    /// How many recent decisions are kept.
    public let capacity: Int
    /// How many recent first passes after a delay are kept, with their
    /// delays, for `LiveCost`: 16 bytes each.
    public let delayCapacity: Int

    private struct State {
        var pending: [HistoryKey: Int64] = [:]
        var recent: [RecentDecision] = []
        var next = 0
        var delays: [(time: Int64, delay: Int64)] = []
        var nextDelay = 0
    }
    private let state = Mutex(State())

    public init(capacity: Int = 50, delayCapacity: Int = 10_000) {
        self.capacity = capacity
        self.delayCapacity = max(1, delayCapacity)
    }

    /// The series a verdict counts in, or nil if it is not counted.
    public static func series(of v: Verdict) -> Series? {
        if v.action == .defer || v.wouldDefer { return .deferred }
        if v.action == .reject { return .rejected }
        switch v.reason {
        case .notRecipientStage: return nil
        case .delayElapsed, .knownTriplet: return .passed
        case .authenticated, .trustedClient, .whitelisted, .recipientOptedOut, .recipientNotOptedIn,
             .clientAutowhitelisted, .dnsAllowlisted, .notSuspicious:
            return .whitelisted
        case .noClientAddress, .noRecipient, .storeUnavailable, .blacklisted, .newTriplet, .tooEarly, .dnsRejected:
            return .other
        }
    }

    /// Counts one decision made at `now`.
    public func record(_ v: Verdict, _ query: GreylistQuery, now: Int64) {
        guard let series = Self.series(of: v) else { return }
        let hour = now / 3600
        let word: String
        switch v.action {
        case .pass: word = v.wouldDefer ? "would defer" : "pass"
        case .defer: word = "defer"
        case .reject: word = "reject"
        }
        let entry = RecentDecision(time: now, action: word, reason: v.reason.rawValue, client: query.clientAddress,
                                   sender: query.sender, recipient: query.recipient, via: query.origin,
                                   delayed: v.delayed,
                                   retryIn: (v.action == .defer || v.wouldDefer) ? v.timeLeft : nil,
                                   zones: v.zones, spf: v.spf)
        state.withLock { s in
            s.pending[HistoryKey(hour: hour, name: series.rawValue), default: 0] += 1
            if v.reason == .newTriplet && series == .deferred {
                s.pending[HistoryKey(hour: hour, name: Self.newTriplets), default: 0] += 1
            }
            if v.reason == .delayElapsed, let delayed = v.delayed, delayed > 0 {
                s.pending[HistoryKey(hour: (now - delayed) / 3600, name: Self.returned), default: 0] += 1
                s.pending[HistoryKey(hour: hour, name: Self.returnBucket(delayed)), default: 0] += 1
                if s.delays.count < delayCapacity {
                    s.delays.append((now, delayed))
                } else {
                    s.delays[s.nextDelay] = (now, delayed)
                }
                s.nextDelay = (s.nextDelay + 1) % delayCapacity
            }
            if s.recent.count < capacity {
                s.recent.append(entry)
            } else {
                s.recent[s.next] = entry
            }
            s.next = (s.next + 1) % capacity
        }
    }

    /// The most recent first passes after a delay (at most `delayCapacity`):
    /// when, and after how many seconds.
    public func recentDelays() -> [(time: Int64, delay: Int64)] {
        state.withLock { $0.delays }
    }

    /// The counts not yet in the store.
    public func unsaved() -> [HistoryCount] {
        state.withLock { s in s.pending.map { HistoryCount(hour: $0.key.hour, name: $0.key.name, count: $0.value) } }
    }

    /// The most recent decisions, newest first.
    public func recent() -> [RecentDecision] {
        state.withLock { s in
            guard s.recent.count == capacity else { return s.recent.reversed() }
            return Array((s.recent[s.next...] + s.recent[..<s.next]).reversed())
        }
    }

    /// Adds the counts not yet saved to the store's history. If the store
    /// fails, they are kept and added to the next flush.
    public func flush(to store: any GreylistStore) async throws {
        let taken = state.withLock { s in
            let p = s.pending
            s.pending = [:]
            return p
        }
        guard !taken.isEmpty else { return }
        do {
            try await store.addHistory(taken.map { HistoryCount(hour: $0.key.hour, name: $0.key.name, count: $0.value) })
        } catch {
            state.withLock { s in s.pending.merge(taken, uniquingKeysWith: +) }
            throw error
        }
    }
}
