/// The client's answers by name and type, each until its time runs out.
///
/// Bounded: at `capacity` entries an insert first drops the expired ones
/// (at most once per `capacity / 4` inserts), then the oldest. Not
/// thread-safe; the client guards it with a lock. Times are nanoseconds of
/// a monotonic clock, given by the caller (tests pass their own).
struct DNSCache {
    struct Key: Hashable, Sendable {
        var name: String
        var type: DNSRecordType
    }

    private struct Entry {
        var result: DNSLookupResult
        var expires: UInt64
        var generation: UInt64
    }

    let capacity: Int
    private var entries: [Key: Entry] = [:]
    /// Keys in insertion order with the generation they were inserted with;
    /// a key inserted again leaves a stale item that eviction skips.
    private var order: [(key: Key, generation: UInt64)] = []
    private var orderStart = 0
    private var generation: UInt64 = 0
    private var insertsSinceSweep = 0

    init(capacity: Int) { self.capacity = max(0, capacity) }

    var count: Int { entries.count }

    /// The result for `key` if it has not expired at `now`.
    mutating func get(_ key: Key, now: UInt64) -> DNSLookupResult? {
        guard let e = entries[key] else { return nil }
        if e.expires <= now {
            entries[key] = nil
            return nil
        }
        return e.result
    }

    /// Keeps `result` for `ttl` nanoseconds (nothing for 0).
    mutating func put(_ key: Key, _ result: DNSLookupResult, ttl: UInt64, now: UInt64) {
        guard capacity > 0, ttl > 0 else { return }
        generation &+= 1
        if entries[key] == nil && entries.count >= capacity { makeRoom(now: now) }
        entries[key] = Entry(result: result, expires: now &+ min(ttl, UInt64.max - now), generation: generation)
        order.append((key, generation))
        compactOrder()
    }

    private mutating func makeRoom(now: UInt64) {
        insertsSinceSweep += 1
        if insertsSinceSweep >= max(1, capacity / 4) {
            insertsSinceSweep = 0
            entries = entries.filter { $0.value.expires > now }
            if entries.count < capacity { return }
        }
        // The oldest live entry goes.
        while orderStart < order.count {
            let item = order[orderStart]
            orderStart += 1
            if let e = entries[item.key], e.generation == item.generation {
                entries[item.key] = nil
                return
            }
        }
    }

    /// Drops the consumed and stale front of `order` once it is large.
    private mutating func compactOrder() {
        guard order.count > 2 * capacity + 16 else { return }
        order = order[orderStart...].filter { entries[$0.key]?.generation == $0.generation }
        orderStart = 0
    }
}
