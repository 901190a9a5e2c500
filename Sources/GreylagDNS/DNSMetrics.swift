import CoreMetrics
import NIOCore
import Synchronization

/// The client's metrics: `greylag_dns_lookups_total{type,outcome}` (every
/// lookup, cached or not), `greylag_dns_cache_hits_total{type}`, and
/// `greylag_dns_lookup_seconds` (lookups that went to the servers).
final class DNSMetrics: Sendable {
    private let factory: any MetricsFactory
    private let counters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let seconds: CoreMetrics.Timer

    init(factory: any MetricsFactory) {
        self.factory = factory
        seconds = CoreMetrics.Timer(label: "greylag_dns_lookup_seconds", factory: factory)
    }

    static func outcome(_ r: DNSLookupResult) -> String {
        switch r {
        case .records: return "records"
        case .noData: return "nodata"
        case .nxDomain: return "nxdomain"
        case .failure(let f): return f.rawValue
        }
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Counter {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        return counters.withLock { c in
            if let found = c[key] { return found }
            let made = CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory)
            c[key] = made
            return made
        }
    }

    func lookup(_ type: DNSRecordType, _ r: DNSLookupResult) {
        counter("greylag_dns_lookups_total", [("type", type.description), ("outcome", Self.outcome(r))]).increment()
    }

    func overload(_ type: DNSRecordType) {
        counter("greylag_dns_lookups_total", [("type", type.description), ("outcome", "overload")]).increment()
    }

    func cacheHit(_ type: DNSRecordType) {
        counter("greylag_dns_cache_hits_total", [("type", type.description)]).increment()
    }

    func took(_ t: TimeAmount) { seconds.recordNanoseconds(max(0, t.nanoseconds)) }
}
