/// Plays the store for the engine: keeps records and client counts in
/// memory and applies each decision's change, so sequences of decisions on
/// a manual clock can be made without a database: the engine's own tests,
/// migrated configurations deciding as the old tool would, and
/// `greylag replay`.
public struct MemoryStore: Sendable {
    public var records: [Triplet: GreylistRecord] = [:]
    public var clients: [String: ClientCount] = [:]

    /// A client network's count of passed triplets and until when it is remembered.
    public struct ClientCount: Sendable, Hashable {
        public var passed: Int64
        public var expires: Int64
    }

    public init() {}

    /// The verdict for `query` at `now`, with the daemon's steps: `prepare`,
    /// then `screen` with the DNS `facts` of the client (none by default),
    /// then `decide` on the stored state, whose change is applied.
    public mutating func ask(_ engine: Engine, _ query: GreylistQuery, facts: DNSFacts = DNSFacts(),
                             at now: Int64) -> Verdict {
        switch engine.prepare(query, now: now) {
        case .decided(let verdict):
            return verdict
        case .lookup(let prepared, let dryRun, let rule):
            let triplet: Triplet
            switch engine.screen(prepared, query, facts: facts, rule: rule) {
            case .decided(let verdict): return verdict
            case .lookup(let keyed): triplet = keyed
            }
            let client = clients[triplet.network].flatMap { $0.expires >= now ? $0.passed : nil } ?? 0
            let decision = engine.decide(triplet, state: TripletState(record: records[triplet],
                                                                      clientPassedTriplets: client), now: now, dryRun: dryRun,
                                         delay: query.delayOverride, rule: rule)
            if let record = decision.change.record { records[triplet] = record }
            switch decision.change.client {
            case .none: break
            case .refresh(let expires): clients[triplet.network]?.expires = expires
            case .countPass(let expires):
                let old = clients[triplet.network].flatMap { $0.expires >= now ? $0.passed : nil } ?? 0
                clients[triplet.network] = ClientCount(passed: old.saturatingAdd(1), expires: expires)
            }
            var verdict = decision.verdict
            if verdict.zones.isEmpty { verdict.zones = facts.listings.map(\.zone) }
            return verdict
        }
    }

    /// Forgets records and client counts that expired before `now`, as the
    /// daemon's expiry job does, so a long replay's memory stays that of the
    /// records alive.
    public mutating func expire(before now: Int64) {
        records = records.filter { $0.value.recordExpires >= now }
        clients = clients.filter { $0.value.expires >= now }
    }
}
