import GreylagCore

/// Plays the store for the engine: keeps records and client counts in
/// memory and applies each decision's change, so sequences of decisions on
/// a manual clock can be checked (the engine's own tests, and migrated
/// configurations deciding as the old tool would).
public struct MemoryStore {
    public var records: [Triplet: GreylistRecord] = [:]
    public var clients: [String: (passed: Int64, expires: Int64)] = [:]

    public init() {}

    public mutating func ask(_ engine: Engine, _ query: GreylistQuery, at now: Int64) -> Verdict {
        switch engine.prepare(query, now: now) {
        case .decided(let verdict):
            return verdict
        case .lookup(let triplet, let dryRun, let rule):
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
                clients[triplet.network] = (old + 1, expires)
            }
            return decision.verdict
        }
    }
}
