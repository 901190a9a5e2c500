import GreylagCore

/// The built-in configurations of the comparison in docs/replay.md. None
/// has client-name whitelists (greylag's built-in list or postgrey's), so
/// they measure the keying itself; `greylag replay --profile defaults`
/// adds greylag's shipped lists.
public enum ReplayProfiles {
    public static let names = ["classic", "spf", "selective", "postgrey", "spf-selective"]
    /// The four the issue compares, in the order BENCHMARKS.md shows.
    public static let comparison = ["classic", "spf", "selective", "postgrey"]

    /// The zone weights of the DNS-list profiles: the trace generator's
    /// allow-list vouches, one listing on a block list makes suspicious.
    public static let zoneWeights = [
        TraceGenerator.allowZone: -10, TraceGenerator.blockZone: 5, TraceGenerator.secondBlockZone: 3,
    ]

    public static func profile(_ name: String) -> ReplayProfile? {
        var dns = DNSPolicy()
        switch name {
        case "classic":
            // greylag's defaults: /24 and /64 triplets, delay 5 min, retry
            // window 2 days, pass TTL 36 days, auto-whitelist after 5.
            return ReplayProfile(name: name, engine: Engine())
        case "spf":
            dns.spfKeying = .domain
            return ReplayProfile(name: name, engine: Engine(dns: dns))
        case "selective":
            dns.selective = true
            return ReplayProfile(name: name, engine: Engine(dns: dns), zoneWeights: zoneWeights)
        case "spf-selective":
            dns.selective = true
            dns.spfKeying = .domain
            return ReplayProfile(name: name, engine: Engine(dns: dns), zoneWeights: zoneWeights)
        case "postgrey":
            // postgrey 1.37's defaults: --delay=300, --retry-window=2 (days),
            // --max-age=35 (days), --ipv4cidr=24, --ipv6cidr=64,
            // --auto-whitelist-clients=5.
            var p = GreylistPolicy()
            p.delay = 300
            p.retryWindow = 2 * 86_400
            p.passTTL = 35 * 86_400
            p.keying = NetworkKeying(ipv4Prefix: 24, ipv6Prefix: 64)
            p.clientAutowhitelist = 5
            return ReplayProfile(name: name, engine: Engine(policy: p))
        default:
            return nil
        }
    }
}

extension ReplayReport {
    /// The reports as a text table, one profile a row.
    public static func table(_ reports: [ReplayReport]) -> String {
        func pct(_ d: Double) -> String {
            let tenths = Int((d * 1000).rounded())
            return "\(tenths / 10).\(tenths % 10)%"
        }
        func dur(_ s: Int64?) -> String { s.map(DurationText.format) ?? "-" }
        let header = ["profile", "spam blocked", "legit delayed", "median", "p90", "max", "gave up", "rejected"]
        let rows = reports.map { r in
            [r.profile, "\(pct(r.spamBlockedShare)) (\(r.spamBlocked)/\(r.spam))",
             "\(pct(r.legitDelayedShare)) (\(r.legitDelayed)/\(r.legit))",
             dur(r.delayMedian), dur(r.delayP90), dur(r.delayMax), "\(r.legitGaveUp)", "\(r.legitRejected)"]
        }
        let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count + 2)
            }.joined()
        }.joined(separator: "\n") + "\n"
    }
}
