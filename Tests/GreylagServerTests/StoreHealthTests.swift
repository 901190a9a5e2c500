import GreylagServer
import Logging
import Testing

@Suite struct StoreHealthTests {
    @Test func oneLineWhenTheStoreFailsAndOneWhenItRecovers() {
        let log = CapturedLog()
        var logger = Logger(label: "test") { _ in CapturingHandler(log: log) }
        logger.logLevel = .debug
        let health = StoreHealth(logger: logger, failureMode: .pass)
        health.succeeded()
        #expect(!health.degraded && log.all.isEmpty)

        health.failed("connection refused", client: "192.0.2.1")
        health.failed("connection refused")
        health.failed("decision not ready after 1000 ms")
        #expect(health.degraded && health.failures == 3)
        #expect(log.all.filter { $0.hasPrefix("error ") } == [
            "error store degraded: connection refused; passing every decision that needs the store until it answers again",
        ])
        #expect(log.all.filter { $0.hasPrefix("debug store failed, passing: ") }.count == 2)

        health.succeeded()
        health.succeeded()
        #expect(!health.degraded && health.failures == 3)
        #expect(log.all.filter { $0.contains("store recovered after ") } == [
            "notice store recovered after 0 s; 3 decision(s) were answered by the failure mode (passing)",
        ])

        // A second outage is a new episode, logged again.
        health.failed("timeout")
        #expect(health.degraded && log.all.filter { $0.hasPrefix("error store degraded: ") }.count == 2)
    }
}

@Suite struct StoreHealthLateFailureTests {
    @Test func aQueryThatHungThroughTheOutageDoesNotReopenIt() {
        let log = CapturedLog()
        let health = StoreHealth(logger: Logger(label: "test") { _ in CapturingHandler(log: log) }, failureMode: .defer)
        let before = StoreHealth.now()
        health.failed("timeout", startedAt: before)
        health.succeeded()
        // Asked before the recovery, failed after it: counted, not a new outage.
        health.failed("MySQL/MariaDB did not answer within 1.0 s", startedAt: before)
        #expect(!health.degraded && health.failures == 2)
        // Asked after the recovery: a new outage.
        health.failed("connection refused")
        #expect(health.degraded)
        #expect(log.all.filter { $0.hasPrefix("error store degraded: ") } == [
            "error store degraded: timeout; deferring every decision that needs the store until it answers again",
            "error store degraded: connection refused; deferring every decision that needs the store until it answers again",
        ])
    }
}

@Suite struct StatsLineTests {
    @Test func everyIntervalOneLineWithTheCountsSinceTheLast() async throws {
        let log = CapturedLog()
        try await withDaemon(configure: { $0.statsInterval = 1 }, log: log) { addresses, _ in
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)
            #expect(try await c.ask(request())?.hasPrefix("action=DEFER_IF_PERMIT ") == true)
            for _ in 0..<40 where log.all.filter({ $0.contains("stats: ") }).count < 2 {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        let lines = log.all.filter { $0.hasPrefix("notice stats: ") }
        #expect(lines.count >= 2, "\(log.all)")
        // The columns, as a log analyser splits them.
        let fields = lines.map { line in
            Dictionary(line.dropFirst("notice stats: ".count).split(separator: " ").map {
                let kv = $0.split(separator: "=", maxSplits: 1)
                return (String(kv[0]), String(kv[1]))
            }, uniquingKeysWith: { a, _ in a })
        }
        #expect(fields[0]["interval"] == "1s")
        #expect(fields[0]["defer"] == "2" && fields[0]["pass"] == "0" && fields[0]["reject"] == "0")
        #expect(fields[0]["new_triplet"] == "1" && fields[0]["too_early"] == "1" && fields[0]["store_failures"] == "0")
        // The next interval saw nothing: counts are since the last line, not since start.
        #expect(fields[1]["defer"] == "0" && fields[1]["new_triplet"] == "0")
        #expect(fields[0].keys.sorted() == fields[1].keys.sorted())
    }
}
