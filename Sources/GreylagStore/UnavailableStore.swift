import GreylagCore
import Synchronization

/// Stands in for a store that could not be opened (a damaged or foreign
/// file, a database server that is down at start). Every call fails at
/// once with the reason, so each decision that needs the store gets the
/// failure mode without waiting for the store timeout, and the daemon keeps
/// serving until the real store opens (see `SwappableStore`).
public struct UnavailableStore: GreylistStore {
    /// The error of every call.
    public struct Failure: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { "the store is not open: \(reason)" }
    }

    /// Why the store could not be opened.
    public let reason: String

    public init(reason: String) { self.reason = reason }

    private var failure: Failure { Failure(reason: reason) }

    public func decide(_ triplet: Triplet, now: Int64, _ decide: @escaping @Sendable (TripletState) -> Decision,
                       completion: @escaping @Sendable (Result<Decision, any Error>) -> Void) {
        completion(.failure(failure))
    }

    public func record(for triplet: Triplet) async throws -> GreylistRecord? { throw failure }
    public func records(matching filter: RecordFilter, now: Int64) async throws -> [GreylistRecord] { throw failure }
    public func delete(_ triplet: Triplet) async throws -> Bool { throw failure }
    public func expire(now: Int64, limit: Int) async throws -> Int { throw failure }
    public func counts(now: Int64) async throws -> StoreCounts { throw failure }
    public func manualEntries() async throws -> [ManualEntry] { throw failure }
    public func addManualEntry(_ entry: ManualEntry) async throws -> ManualEntry { throw failure }
    public func removeManualEntry(list: ListKind, field: SelectorField, value: String) async throws -> Bool { throw failure }
    public func importState(records: [GreylistRecord], clients: [ClientRecord]) async throws { throw failure }
    public func exportRecords(after: Triplet?, limit: Int) async throws -> [GreylistRecord] { throw failure }
    public func exportClients(after: String?, limit: Int) async throws -> [ClientRecord] { throw failure }
    public func addHistory(_ counts: [HistoryCount]) async throws { throw failure }
    public func history(since: Int64) async throws -> [HistoryCount] { throw failure }
    public func pruneHistory(before: Int64) async throws -> Int { throw failure }
    public func waiting(by field: WaitingField, now: Int64, limit: Int) async throws -> [WaitingGroup] { throw failure }
    /// Nothing is open, nothing to close.
    public func close() async throws {}
}

/// A store that forwards every call to the store in place, which can be
/// replaced while the daemon runs: the daemon hands this one to everything
/// that holds a store (the service, the admin commands, the expiry loop,
/// the dashboard) and swaps the real store in once it opens. Each call
/// takes the store in place when it starts and finishes on it, so a swap
/// never cuts a call short.
public final class SwappableStore: GreylistStore {
    private struct State {
        var current: any GreylistStore
        var closed = false
    }
    private let state: Mutex<State>

    public init(_ store: any GreylistStore) {
        state = Mutex(State(current: store))
    }

    /// The store calls go to now.
    public var current: any GreylistStore { state.withLock { $0.current } }

    /// Why the store in place is a stand-in, if it is one.
    public var unavailableReason: String? { (current as? UnavailableStore)?.reason }

    /// Puts `store` in place and returns the one it replaces (for the
    /// caller to close); nil once this store is closed, and then the caller
    /// closes `store`.
    public func swap(to store: any GreylistStore) -> (any GreylistStore)? {
        state.withLock { s in
            guard !s.closed else { return nil }
            defer { s.current = store }
            return s.current
        }
    }

    public func decide(_ triplet: Triplet, now: Int64, _ decide: @escaping @Sendable (TripletState) -> Decision,
                       completion: @escaping @Sendable (Result<Decision, any Error>) -> Void) {
        current.decide(triplet, now: now, decide, completion: completion)
    }

    public func record(for triplet: Triplet) async throws -> GreylistRecord? {
        try await current.record(for: triplet)
    }

    public func records(matching filter: RecordFilter, now: Int64) async throws -> [GreylistRecord] {
        try await current.records(matching: filter, now: now)
    }

    public func delete(_ triplet: Triplet) async throws -> Bool { try await current.delete(triplet) }

    public func expire(now: Int64, limit: Int) async throws -> Int { try await current.expire(now: now, limit: limit) }

    public func counts(now: Int64) async throws -> StoreCounts { try await current.counts(now: now) }

    public func manualEntries() async throws -> [ManualEntry] { try await current.manualEntries() }

    public func addManualEntry(_ entry: ManualEntry) async throws -> ManualEntry {
        try await current.addManualEntry(entry)
    }

    public func removeManualEntry(list: ListKind, field: SelectorField, value: String) async throws -> Bool {
        try await current.removeManualEntry(list: list, field: field, value: value)
    }

    public func importState(records: [GreylistRecord], clients: [ClientRecord]) async throws {
        try await current.importState(records: records, clients: clients)
    }

    public func exportRecords(after: Triplet?, limit: Int) async throws -> [GreylistRecord] {
        try await current.exportRecords(after: after, limit: limit)
    }

    public func exportClients(after: String?, limit: Int) async throws -> [ClientRecord] {
        try await current.exportClients(after: after, limit: limit)
    }

    public func addHistory(_ counts: [HistoryCount]) async throws { try await current.addHistory(counts) }

    public func history(since: Int64) async throws -> [HistoryCount] { try await current.history(since: since) }

    public func pruneHistory(before: Int64) async throws -> Int { try await current.pruneHistory(before: before) }

    public func waiting(by field: WaitingField, now: Int64, limit: Int) async throws -> [WaitingGroup] {
        try await current.waiting(by: field, now: now, limit: limit)
    }

    /// Closes the store in place; a store swapped in afterwards is refused.
    public func close() async throws {
        let store = state.withLock { s in
            s.closed = true
            return s.current
        }
        try await store.close()
    }
}
