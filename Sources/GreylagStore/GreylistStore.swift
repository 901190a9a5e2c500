import GreylagCore

/// Which records a listing returns.
public struct RecordFilter: Sendable, Hashable {
    public enum State: String, Sendable, Hashable, CaseIterable {
        case any, pending, passed
    }

    /// Exact client network text, or nil for any.
    public var network: String?
    public var sender: String?
    public var recipient: String?
    public var state: State = .any
    public var limit: Int = 100

    public init(network: String? = nil, sender: String? = nil, recipient: String? = nil,
                state: State = .any, limit: Int = 100) {
        self.network = network
        self.sender = sender
        self.recipient = recipient
        self.state = state
        self.limit = limit
    }
}

/// Counts of live records.
public struct StoreCounts: Sendable, Hashable, Codable {
    /// Deferred triplets waiting for their retry.
    public var pending: Int64
    /// Triplets that passed and are still remembered.
    public var passed: Int64
    /// Client networks with passed triplets.
    public var clients: Int64

    public init(pending: Int64, passed: Int64, clients: Int64) {
        self.pending = pending
        self.passed = passed
        self.clients = clients
    }
}

/// One count of the hourly history the dashboard draws: how many events
/// named `name` (a decision series, a return-delay bucket, ...) happened in
/// hour `hour` (Unix seconds divided by 3600).
public struct HistoryCount: Sendable, Hashable, Codable {
    public var hour: Int64
    public var name: String
    public var count: Int64

    public init(hour: Int64, name: String, count: Int64) {
        self.hour = hour
        self.name = name
        self.count = count
    }
}

extension HistoryCount {
    /// Whether a count read back from a store is one greylag could have
    /// written: an hour of the years 1970 to 9999 and a count up to 10^12.
    /// The dashboard leaves others out, so a damaged or hostile row cannot
    /// overflow its sums and scales.
    public var isPlausible: Bool {
        (0...70_389_527).contains(hour) && (0...1_000_000_000_000).contains(count)
    }

    /// `counts` with the counts of equal hour and name added together, in
    /// hour and name order: one row each, written in the same order by every
    /// writer (so concurrent writers on a shared store take row locks in
    /// the same order).
    public static func merged(_ counts: [HistoryCount]) -> [HistoryCount] {
        var sums: [HistoryKey: Int64] = [:]
        for c in counts {
            let key = HistoryKey(hour: c.hour, name: c.name)
            sums[key] = (sums[key] ?? 0).saturatingAdd(c.count)
        }
        return sums.map { HistoryCount(hour: $0.key.hour, name: $0.key.name, count: $0.value) }
            .sorted { ($0.hour, $0.name) < ($1.hour, $1.name) }
    }
}

/// An hour and a series name.
public struct HistoryKey: Sendable, Hashable {
    public var hour: Int64
    public var name: String

    public init(hour: Int64, name: String) {
        self.hour = hour
        self.name = name
    }
}

/// Which field `waiting(by:now:limit:)` groups pending triplets by.
public enum WaitingField: String, Sendable, Hashable, CaseIterable {
    case network, sender
}

/// Pending (deferred, not yet passed) live triplets sharing one client network or sender.
public struct WaitingGroup: Sendable, Hashable, Codable {
    /// The network or sender.
    public var key: String
    /// How many pending triplets it has.
    public var triplets: Int64
    /// How many times they were deferred, in all.
    public var attempts: Int64
    /// When the oldest of them was first seen.
    public var oldestFirstSeen: Int64

    public init(key: String, triplets: Int64, attempts: Int64, oldestFirstSeen: Int64) {
        self.key = key
        self.triplets = triplets
        self.attempts = attempts
        self.oldestFirstSeen = oldestFirstSeen
    }
}

/// The narrow interface every storage backend implements. The store keeps
/// state; the engine decides. `decide` is the one place where both meet: the
/// store reads the triplet's state, calls the engine's decision with it and
/// writes the resulting change, atomically, and returns only once the change
/// is durable.
public protocol GreylistStore: Sendable {
    /// Reads `triplet` and its client network at `now`, applies `decide` and
    /// stores its change in one transaction, then calls `completion` (on any
    /// thread). This is the hot path; callers on an event loop use it to
    /// avoid a hop through the task pool.
    func decide(_ triplet: Triplet, now: Int64, _ decide: @escaping @Sendable (TripletState) -> Decision,
                completion: @escaping @Sendable (Result<Decision, any Error>) -> Void)

    /// The record of one triplet, expired or not.
    func record(for triplet: Triplet) async throws -> GreylistRecord?

    /// Live records matching a filter, most recently seen first.
    func records(matching filter: RecordFilter, now: Int64) async throws -> [GreylistRecord]

    /// Removes one triplet; true if it existed.
    func delete(_ triplet: Triplet) async throws -> Bool

    /// Removes at most `limit` records that expired before `now`; returns
    /// how many were removed. Called repeatedly in small batches.
    func expire(now: Int64, limit: Int) async throws -> Int

    /// Counts of live records at `now`.
    func counts(now: Int64) async throws -> StoreCounts

    /// Every manual white- and blacklist entry, expired ones included, by id.
    func manualEntries() async throws -> [ManualEntry]

    /// Adds a manual entry, or updates the comment and expiry of the entry
    /// with the same list, field and value; returns it with its id.
    func addManualEntry(_ entry: ManualEntry) async throws -> ManualEntry

    /// Removes the manual entry with this list, field and value; true if it existed.
    func removeManualEntry(list: ListKind, field: SelectorField, value: String) async throws -> Bool

    /// Merges imported state into the store. A triplet or client network
    /// already stored keeps the earliest first sighting, the latest last
    /// sighting, the higher counts, the earlier block expiry and the later
    /// record expiry (origin MANUAL if either is), so importing the same data
    /// twice changes nothing. Written in batches; each batch is atomic.
    func importState(records: [GreylistRecord], clients: [ClientRecord]) async throws

    /// Up to `limit` records, expired or not, after `after` in the store's
    /// own order of triplets, for export: PostgreSQL and MySQL by network,
    /// sender and recipient, SQLite by its key hash (`TripletHash`) and then
    /// those. Paging from the last record returned lists every record once.
    func exportRecords(after: Triplet?, limit: Int) async throws -> [GreylistRecord]

    /// Up to `limit` client records, expired or not, after network `after` in order, for export.
    func exportClients(after: String?, limit: Int) async throws -> [ClientRecord]

    /// Adds `counts` to the hourly history: a count for an hour and name
    /// already stored is added to, so several daemons on one shared store
    /// add up. Atomic.
    func addHistory(_ counts: [HistoryCount]) async throws

    /// The history from hour `since` on, ordered by hour and name.
    func history(since: Int64) async throws -> [HistoryCount]

    /// Removes the history before hour `before`; returns how many rows went.
    func pruneHistory(before: Int64) async throws -> Int

    /// The `limit` networks or senders with the most pending live triplets
    /// at `now` (most first, then by key).
    func waiting(by field: WaitingField, now: Int64, limit: Int) async throws -> [WaitingGroup]

    /// Finishes pending writes and closes the store.
    func close() async throws
}

/// How many rows the server backends write per import statement.
public let importBatchSize = 500

/// The SQL expression that merges column `c` of an imported row into the
/// stored one; `old` and `new` name the stored and imported values.
public enum ImportMerge {
    /// Column → how it merges: "min", "max" or "origin".
    public static let tripletColumns: [(String, String)] = [
        ("first_seen", "min"), ("last_seen", "max"), ("block_expires", "min"), ("record_expires", "max"),
        ("blocked_count", "max"), ("passed_count", "max"), ("origin", "origin"),
    ]
    public static let clientColumns: [(String, String)] = [
        ("passed_triplets", "max"), ("first_seen", "min"), ("last_seen", "max"), ("record_expires", "max"),
    ]

    /// `SET` assignments, given the dialect's two-argument min and max
    /// functions and how to name the stored and imported values.
    public static func assignments(_ columns: [(String, String)], min: String, max: String,
                                   old: (String) -> String, new: (String) -> String) -> String {
        columns.map { c, how in
            switch how {
            case "min": return "\(c) = \(min)(\(old(c)), \(new(c)))"
            case "max": return "\(c) = \(max)(\(old(c)), \(new(c)))"
            default:
                return "\(c) = CASE WHEN \(old(c)) = 'MANUAL' OR \(new(c)) = 'MANUAL' THEN 'MANUAL' ELSE 'AUTO' END"
            }
        }.joined(separator: ", ")
    }
}

extension GreylistStore {
    /// Every record and then every client record, expired or not, in the
    /// store's order, `page` rows at a time: each page is handed to `records` or
    /// `clients` as it is read.
    public func exportAll(page: Int, records: ([GreylistRecord]) throws -> Void,
                          clients: ([ClientRecord]) throws -> Void) async throws {
        var afterTriplet: Triplet? = nil
        while true {
            let next = try await exportRecords(after: afterTriplet, limit: page)
            try records(next)
            guard next.count == page, let last = next.last else { break }
            afterTriplet = last.triplet
        }
        var afterNetwork: String? = nil
        while true {
            let next = try await exportClients(after: afterNetwork, limit: page)
            try clients(next)
            guard next.count == page, let last = next.last else { break }
            afterNetwork = last.network
        }
    }

    /// Lets a waiting triplet through at once (an administrator's release):
    /// a live record that has not passed becomes a passed one, origin
    /// `MANUAL`, kept `passTTL` seconds from `now` (or longer if it was
    /// already), so its next retry passes as a known triplet and it is no
    /// longer counted as waiting. The client network's count of passed
    /// triplets is left alone: the client has not retried yet. Made with
    /// `decide`, so it is atomic on every backend. True when such a record
    /// was released; false when the triplet is unknown, expired or has
    /// already passed (nothing is written then).
    public func release(_ triplet: Triplet, now: Int64, passTTL: Int64) async throws -> Bool {
        let decision = try await decide(triplet, now: now) { state in
            guard var record = state.record, record.recordExpires >= now, !record.hasPassed else {
                return Decision(verdict: Verdict(action: .pass, reason: .knownTriplet, triplet: triplet), change: .none)
            }
            record.blockExpires = min(record.blockExpires, now)
            record.passedCount = 1
            record.recordExpires = max(record.recordExpires, now.saturatingAdd(max(0, passTTL)))
            record.origin = .manual
            return Decision(verdict: Verdict(action: .pass, reason: .delayElapsed, triplet: triplet),
                            change: StoreChange(record: record))
        }
        return decision.change.record != nil
    }

    /// `decide` for async callers.
    public func decide(_ triplet: Triplet, now: Int64,
                       _ decide: @escaping @Sendable (TripletState) -> Decision) async throws -> Decision {
        try await withCheckedThrowingContinuation { continuation in
            self.decide(triplet, now: now, decide) { continuation.resume(with: $0) }
        }
    }
}
