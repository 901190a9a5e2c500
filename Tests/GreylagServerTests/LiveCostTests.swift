import Foundation
import GreylagCore
@testable import GreylagServer
import GreylagStore
import Testing

/// The live counterparts of `greylag replay`'s two numbers.
@Suite struct LiveCostTests {
    static let h: Int64 = 500_000
    static let now = h * 3600 + 1800

    func query() -> GreylistQuery {
        GreylistQuery(stage: .rcpt, clientAddress: "192.0.2.7", sender: "a@example.org", recipient: "b@example.net")
    }

    @Test func historyKeepsTheLatestDelaysBounded() {
        let history = DecisionHistory(capacity: 2, delayCapacity: 3)
        let t = Triplet(network: "192.0.2.0/24", sender: "a@example.org", recipient: "b@example.net")
        for (i, delay) in [600, 700, 800, 900, 1000].enumerated() {
            history.record(Verdict(action: .pass, reason: .delayElapsed, delayed: Int64(delay), triplet: t), query(),
                           now: Self.now + Int64(i))
        }
        // Not delays: a known triplet, a pass with no delay, a defer.
        history.record(Verdict(action: .pass, reason: .knownTriplet, triplet: t), query(), now: Self.now)
        history.record(Verdict(action: .pass, reason: .delayElapsed, delayed: 0, triplet: t), query(), now: Self.now)
        history.record(Verdict(action: .defer, reason: .newTriplet, timeLeft: 300, triplet: t), query(), now: Self.now)
        #expect(history.recentDelays().map(\.delay).sorted() == [800, 900, 1000])
    }

    @Test func blockedCountsTheLast24HoursPastTheirRetryWindow() {
        let h = Self.h
        let history = [
            HistoryCount(hour: h - 73, name: "new", count: 100),  // before the window
            HistoryCount(hour: h - 72, name: "new", count: 10), HistoryCount(hour: h - 72, name: "returned", count: 4),
            HistoryCount(hour: h - 49, name: "new", count: 6), HistoryCount(hour: h - 49, name: "returned", count: 9),
            HistoryCount(hour: h - 48, name: "new", count: 50),  // still inside its retry window
        ]
        let c = LiveCost(history: history, delays: [], now: Self.now, retryWindow: 2 * 86_400)
        #expect(c.blockedFromHour == h - 72 && c.blockedToHour == h - 49)
        // More returns than new triplets in an hour (a restart, an import) count as all came back.
        #expect(c.deferredNew == 16 && c.neverCameBack == 6 && c.blockedShare == 0.375)
        #expect(c.delayedPasses == 0 && c.delayMedian == nil && c.delayMax == nil)
        let empty = LiveCost(history: [], delays: [], now: Self.now, retryWindow: 2 * 86_400)
        #expect(empty.blockedShare == nil && empty.deferredNew == 0)
    }

    @Test func delaysAreThoseOfTheLast24Hours() {
        let now = Self.now
        var delays: [(time: Int64, delay: Int64)] = [(now - 86_400, 99_999)]  // just outside
        for i: Int64 in 1...10 { delays.append((now - i * 60, i * 300)) }
        let c = LiveCost(history: [], delays: delays, now: now, retryWindow: 86_400)
        #expect(c.delayedPasses == 10)
        #expect(c.delayMedian == 1500 && c.delayP90 == 2700 && c.delayMax == 3000)
    }

    @Test func theDashboardTheAPIAndTheMetricsShowThem() throws {
        let h = Self.h
        let cost = LiveCost(history: [HistoryCount(hour: h - 60, name: "new", count: 8),
                                      HistoryCount(hour: h - 60, name: "returned", count: 2)],
                            delays: [(Self.now - 100, 400), (Self.now - 50, 1300)], now: Self.now, retryWindow: 2 * 86_400)
        let d = DashboardData(now: Self.now, host: "mx", delay: 300, retryWindow: 2 * 86_400, history: [], counts: nil,
                              waitingNetworks: [], waitingSenders: [], recent: [], cost: cost)
        let page = DashboardPage.render(d)
        #expect(page.contains("<strong>75.0% never came back</strong>"))
        #expect(page.contains("<strong>7m</strong> (median)") || page.contains("(median)"))
        let json = String(decoding: try JSONEncoder().encode(d), as: UTF8.self)
        #expect(json.contains("\"blockedShare\":0.75") && json.contains("\"delayMax\":1300"))
        let metrics = GreylagMetrics()
        metrics.liveCost(cost)
        let text = metrics.text()
        #expect(text.contains("greylag_blocked_ratio 0.75"))
        #expect(text.contains("greylag_return_delay_seconds{quantile=\"1\"} 1300"))
        #expect(text.contains("greylag_return_delay_window_passes 2"))
        metrics.liveCost(LiveCost(history: [], delays: [], now: Self.now, retryWindow: 86_400))
        #expect(metrics.text().lowercased().contains("greylag_blocked_ratio nan"))
    }
}
