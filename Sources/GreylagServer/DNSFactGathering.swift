import Foundation
import GreylagCore
import GreylagDNS
import Synchronization

/// What one decision's checks need, worked out before any lookup.
struct DNSCheckPlan: Sendable {
    var spf = false
    /// The lists to ask, with their query names.
    var lists: [(index: Int, zone: DNSListZone, name: String)] = []
    /// The reverse name is needed and the MTA did not tell it.
    var lookUpReverse = false
    /// The reverse name is needed (told by the MTA or looked up).
    var reverse = false

    var needsLookups: Bool { spf || !lists.isEmpty || lookUpReverse }
    var isEmpty: Bool { !spf && lists.isEmpty && !reverse }

    /// What the checks must find out for `query` under `policy`; `rule` is
    /// the `[[rules]]` greylist entry that matched (selective mode does
    /// not apply then).
    init(query: GreylistQuery, address: IPAddress, policy: DNSPolicy, settings: DNSCheckSettings,
         rule: Engine.RuleSettings?, canSPF: Bool) {
        spf = canSPF && policy.spfKeying != .off && !query.connectionOnly
        let selective = policy.selective && rule == nil && !query.connectionOnly
        // Without selective mode or a reject threshold, only allow-lists can change a decision.
        let allLists = selective || policy.rejectThreshold != nil
        for (i, z) in settings.lists.enumerated() where allLists || z.weight < 0 {
            if let name = z.queryName(for: query, address: address) { lists.append((i, z, name)) }
        }
        reverse = selective && (policy.suspectUnconfirmedReverse || policy.suspectDynamicNames)
        lookUpReverse = reverse && query.reverseName == .notChecked
    }
}

/// Gathers the DNS facts of one decision: every check at once, on the
/// resolver's time, never past one deadline. Checks that miss it are named
/// in `facts.skipped`; whatever needed them is left out of the decision.
final class DNSFactGathering: Sendable {
    private struct State {
        var facts = DNSFacts()
        var spfResult: String? = nil
        /// Checks not finished: list index (or -1 SPF, -2 PTR) -> name for `skipped`.
        var pending: [Int: String] = [:]
        var found: [Int: ZoneListing] = [:]
        var done = false
        var tasks: [Task<Void, Never>] = []
        /// Where each check's name goes in `skipped`: lists in configuration order, then `spf`, `ptr`.
        var order: [String: Int] = [:]
        var timer: DeadlineTimer? = nil
    }

    private let state = Mutex(State())
    private let completion: @Sendable (DNSFacts, _ spf: String?) -> Void

    private init(completion: @escaping @Sendable (DNSFacts, String?) -> Void) {
        self.completion = completion
    }

    static let spfKey = -1
    static let ptrKey = -2

    /// Starts the checks of `plan` and calls `completion` once: when all
    /// have answered, or at the deadline with what has.
    static func start(_ plan: DNSCheckPlan, query: GreylistQuery, address: IPAddress, settings: DNSCheckSettings,
                      suspectDynamic: Bool, resolver: (any DNSResolving)?, spf: SPFCheck?,
                      completion: @escaping @Sendable (DNSFacts, String?) -> Void) {
        let g = DNSFactGathering(completion: completion)
        var base = DNSFacts()
        if plan.reverse && !plan.lookUpReverse {
            base.reverseName = query.reverseName
            if suspectDynamic && !query.ptrName.isEmpty { base.dynamicName = settings.dynamicNames.matches(query.ptrName) }
        }
        var jobs: [(Int, String, @Sendable () async -> Void)] = []
        if plan.spf, let spf {
            let sender = query.sender, helo = query.heloName
            jobs.append((spfKey, "spf", {
                let r = await spf(address, sender, helo)
                g.finish(spfKey) { s in
                    s.spfResult = r.result
                    if r.result == "temperror" {
                        s.facts.skipped.append("spf")
                    } else {
                        s.facts.spf = r.result == "pass" ? r.authorization : nil
                    }
                }
            }))
        }
        for l in plan.lists {
            guard let resolver else {
                base.skipped.append(l.zone.zone)
                continue
            }
            let zone = l.zone, name = l.name, index = l.index
            jobs.append((index, zone.zone, {
                let result = await resolver.lookup(name, .a)
                g.finish(index) { s in
                    switch result {
                    case .records(let records):
                        let listed = records.contains { r in
                            if case .a(let bytes) = r { return zone.codes.counts(bytes) }
                            return false
                        }
                        if listed { s.found[index] = ZoneListing(zone: zone.zone, weight: zone.weight) }
                    case .noData, .nxDomain:
                        break
                    case .failure:
                        s.facts.skipped.append(zone.zone)
                    }
                }
            }))
        }
        if plan.lookUpReverse {
            if let resolver {
                jobs.append((ptrKey, "ptr", {
                    let (name, ptr, failed) = await reverseLookup(address, resolver: resolver)
                    g.finish(ptrKey) { s in
                        if failed {
                            s.facts.skipped.append("ptr")
                        } else {
                            s.facts.reverseName = name
                        }
                        if suspectDynamic, let ptr { s.facts.dynamicName = settings.dynamicNames.matches(ptr) }
                    }
                }))
            } else {
                base.skipped.append("ptr")
            }
        }
        if jobs.isEmpty {
            completion(base, nil)
            return
        }
        g.state.withLock { s in
            for l in plan.lists where s.order[l.zone.zone] == nil { s.order[l.zone.zone] = l.index }
            s.order["spf"] = Int.max - 1
            s.order["ptr"] = Int.max
            s.facts = base
            for (key, name, _) in jobs { s.pending[key] = name }
        }
        // The deadline runs on a dispatch timer, not in a task: busy
        // cooperative threads must not hold it up.
        let timer = DeadlineTimer(after: settings.deadline) { g.expire() }
        var tasks: [Task<Void, Never>] = []
        for (_, _, job) in jobs { tasks.append(Task { await job() }) }
        let finished = g.state.withLock { s -> Bool in
            s.timer = timer
            if s.done { return true }
            s.tasks = tasks
            return false
        }
        if finished {
            timer.cancel()
            for t in tasks { t.cancel() }
        }
    }

    /// A check answered: record what it found; the last one completes.
    private func finish(_ key: Int, _ update: (inout State) -> Void) {
        let out: (DNSFacts, String?, [Task<Void, Never>])? = state.withLock { s in
            guard !s.done, s.pending.removeValue(forKey: key) != nil else { return nil }
            update(&s)
            guard s.pending.isEmpty else { return nil }
            return complete(&s)
        }
        if let (facts, spf, tasks) = out {
            for t in tasks { t.cancel() }
            completion(facts, spf)
        }
    }

    /// The deadline passed: what has not answered is skipped.
    private func expire() {
        let out: (DNSFacts, String?, [Task<Void, Never>])? = state.withLock { s in
            guard !s.done else { return nil }
            s.facts.skipped += s.pending.values
            if s.pending[Self.spfKey] != nil && s.spfResult == nil { s.spfResult = "timeout" }
            s.pending = [:]
            return complete(&s)
        }
        if let (facts, spf, tasks) = out {
            for t in tasks { t.cancel() }
            completion(facts, spf)
        }
    }

    private func complete(_ s: inout State) -> (DNSFacts, String?, [Task<Void, Never>]) {
        s.done = true
        s.facts.listings = s.found.sorted { $0.key < $1.key }.map(\.value)
        let order = s.order
        s.facts.skipped.sort { (order[$0] ?? 0, $0) < (order[$1] ?? 0, $1) }
        let tasks = s.tasks
        s.tasks = []
        s.timer?.cancel()
        s.timer = nil
        return (s.facts, s.spfResult, tasks)
    }

    /// The client's reverse name looked up: PTR, then the forward A/AAAA of
    /// up to four PTR names. `failed` when a lookup failed before anything
    /// was confirmed; `ptr` is the first PTR name, for the dynamic patterns.
    static func reverseLookup(_ address: IPAddress, resolver: any DNSResolving) async
        -> (ReverseName, ptr: String?, failed: Bool) {
        let ptrs: [String]
        switch await resolver.lookup(DNSNames.ptrName(address), .ptr) {
        case .records(let records):
            ptrs = records.compactMap { if case .ptr(let n) = $0 { return n.lowercased() } else { return nil } }
        case .noData, .nxDomain:
            return (.absent, nil, false)
        case .failure:
            return (.notChecked, nil, true)
        }
        guard let first = ptrs.first else { return (.absent, nil, false) }
        var failed = false
        for name in ptrs.prefix(4) {
            guard let host = DNSNames.hostName(name) else { continue }
            if Task.isCancelled { return (.notChecked, first, true) }
            switch await resolver.lookup(host, address.isIPv4 ? .a : .aaaa) {
            case .records(let records):
                for r in records {
                    switch (r, address) {
                    case (.a(let b), .v4(let a)) where b.count == 4:
                        if b.reduce(UInt32(0), { $0 << 8 | UInt32($1) }) == a { return (.confirmed(host), first, false) }
                    case (.aaaa(let b), .v6(let high, let low)) where b.count == 16:
                        let h = b[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                        let l = b[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                        if h == high && l == low { return (.confirmed(host), first, false) }
                    default: break
                    }
                }
            case .noData, .nxDomain: break
            case .failure: failed = true
            }
        }
        return failed ? (.notChecked, first, true) : (.unconfirmed, first, false)
    }
}

/// A dispatch work item run once after a delay unless cancelled first.
/// DispatchWorkItem is thread-safe; it is only not marked Sendable here.
final class DeadlineTimer: @unchecked Sendable {
    private let item: DispatchWorkItem

    init(after seconds: Double, _ work: @escaping @Sendable () -> Void) {
        item = DispatchWorkItem(block: work)
        DispatchQueue.global().asyncAfter(deadline: .now() + max(0, seconds), execute: item)
    }

    func cancel() { item.cancel() }
}
