import ArgumentParser
import Foundation
import GreylagCore
import GreylagServer

/// Measures the list rules alone: `Engine.prepare` over many queries with
/// verified client names, with the lists of a configuration (the built-in
/// list and loopback trust by default).
struct BenchLists: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-lists",
        abstract: "Measure the cost of the white/blacklists per query, without store or network.")

    @OptionGroup var options: ConfigOptions
    @Option(help: "Queries to run.") var queries = 1_000_000
    @Option(help: "Share of queries whose client name is on the built-in list, 0 to 1.") var listedShare = 0.2

    func run() throws {
        let config = try options.load()
        let engine = Engine(policy: config.policy, lists: config.lists)
        // A pool of realistic queries: named clients of many domains, some
        // of them large providers, senders and recipients of many domains.
        let providers = ["mail-wr1-f%d.google.com", "mail-db8eur05on20%d.outbound.protection.outlook.com",
                         "sonic%d-22.consmr.mail.ne1.yahoo.com", "a%d-12.smtp-out.amazonses.com"]
        var pool: [GreylistQuery] = []
        var rng = SystemRandomNumberGenerator()
        for i in 0..<10_000 {
            let listed = Double.random(in: 0..<1, using: &rng) < listedShare
            let name = listed
                ? String(format: providers[i % providers.count], i % 97)
                : (i % 5 == 0 ? "unknown" : "mx\(i % 7).mail\(i % 1000).example\(i % 37).net")
            pool.append(GreylistQuery(clientAddress: "198.\(18 + i % 2).\(i % 256).\(i % 254 + 1)", clientName: name,
                                      heloName: name == "unknown" ? "host\(i).example" : name,
                                      sender: "sender\(i)@domain\(i % 500).example",
                                      recipient: "user\(i % 5000)@example.net"))
        }
        var decided = 0
        let start = ContinuousClock.now
        for n in 0..<queries {
            if case .decided = engine.prepare(pool[n % pool.count], now: 1_700_000_000) { decided += 1 }
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let l = engine.lists
        print(String(format: "bench-lists: %d queries, %.0f ns/query (%.0f k queries/s on one core); "
                     + "%d decided by a rule; rules: %d whitelist, %d blacklist, %d trusted, %d scope",
                     queries, seconds / Double(queries) * 1e9, Double(queries) / seconds / 1000, decided,
                     l.whitelist.count, l.blacklist.count, l.trusted.count, l.scope.count))
    }
}
