import GreylagCore
import GreylagStore

extension GreylistService {
    /// Decides the data of a greylistd request: `decide`'s rules, keyed by
    /// `key` when the words form no triplet (and then never counted towards
    /// a client network's auto-whitelisting), and without writing anything
    /// when `record` is false (greylistd's `check` and `status`).
    public func decide(_ query: GreylistQuery, key: Triplet?, record: Bool, now: Int64,
                       completion: @escaping @Sendable (Verdict) -> Void) {
        var engine = self.engine
        let triplet: Triplet
        let dryRun: RuleMatch?
        var rule: Engine.RuleSettings? = nil
        switch engine.prepare(query, now: now) {
        case .decided(let verdict):
            guard let key, verdict.reason == .noClientAddress || verdict.reason == .noRecipient else {
                completion(verdict)
                return
            }
            triplet = key
            dryRun = nil
            engine.policy.clientAutowhitelist = 0
        case .lookup(let t, let d, let r):
            triplet = t
            dryRun = d
            rule = r
        }
        let started = StoreHealth.now()
        let frozen = engine, frozenRule = rule
        store.decide(triplet, now: now, { state in
            let d = frozen.decide(triplet, state: state, now: now, dryRun: dryRun, rule: frozenRule)
            return record ? d : Decision(verdict: d.verdict, change: .none)
        }) { result in
            self.finish(result, triplet: triplet, client: query.clientAddress, startedAt: started, completion: completion)
        }
    }
}
