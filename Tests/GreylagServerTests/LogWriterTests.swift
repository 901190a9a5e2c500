import Foundation
import GreylagCore
import GreylagServer
import GreylagStore
import Logging
import Testing

@Suite struct LogWriterTests {
    /// Logs through a writer into a pipe and returns what came out.
    func capture(maxBuffered: Int = 1 << 20, _ body: (Logger) -> Void) -> String {
        let pipe = Pipe()
        let queue = DispatchQueue(label: "test.log")
        let writer = LogWriter(fd: pipe.fileHandleForWriting.fileDescriptor, maxBuffered: maxBuffered, queue: queue)
        let logger = Logger(label: "greylag") { GreylagLogHandler(label: $0, level: .info, writer: writer) }
        queue.suspend()  // hold the writes back so the whole burst is buffered
        body(logger)
        queue.resume()
        writer.flush()
        try? pipe.fileHandleForWriting.close()
        return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    @Test func writesOneFormattedLinePerEventAtOrAboveTheLevel() throws {
        let out = capture { logger in
            logger.debug("hidden")
            logger.info("defer: client=192.0.2.7", metadata: ["greylag.peer": "127.0.0.1:4000"])
            logger.warning("second")
        }
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        let first = try #require(lines.first)
        #expect(first.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ info greylag: defer: client=192\.0\.2\.7 greylag\.peer=127\.0\.0\.1:4000$"#,
                            options: .regularExpression) != nil, "\(first)")
        #expect(lines.last?.hasSuffix(" warning greylag: second") == true)
    }

    /// With greylag's own handler, decision lines are written into the
    /// log's buffer without a string or a swift-log event; they must read
    /// exactly as the same decisions logged through any other handler, and
    /// what a peer chose must come out escaped.
    @Test func decisionLinesReadTheSameWrittenDirectly() throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.path + "/greylag.db")
        defer { Task { try? await store.close() } }
        let triplet = Triplet(network: "192.0.2.0/24", sender: "a@example.org", recipient: "b@example.net")
        let hostile = GreylistQuery(clientAddress: "192.0.2.7", sender: "a\u{1}\n@example.org",
                                    recipient: "b\u{202E}@example.net")
        let sasl = GreylistQuery(clientAddress: "2001:db8::7", sender: "", recipient: "c@example.net",
                                 authenticatedUser: "jo\u{7F}e", origin: "milter")
        let rule = RuleMatch(field: .client, text: "192.0.2.0/24\u{0}", origin: "whitelist_clients:3")
        let cases: [(Verdict, GreylistQuery)] = [
            (Verdict(action: .defer, reason: .newTriplet, timeLeft: 300, triplet: triplet), hostile),
            (Verdict(action: .pass, reason: .delayElapsed, delayed: 1_234_567_890, triplet: triplet,
                     zones: ["zen.example", "b.example"], spf: "pass\u{1b}", skipped: ["spf", "dnswl"]), hostile),
            (Verdict(action: .pass, reason: .whitelisted, rule: rule), hostile),
            (Verdict(action: .pass, reason: .tooEarly, timeLeft: 0, triplet: triplet, wouldDefer: true), hostile),
            (Verdict(action: .reject, reason: .blacklisted, timeLeft: -5), hostile),
            (Verdict(action: .pass, reason: .authenticated), sasl),
            (Verdict(action: .pass, reason: .notRecipientStage), sasl),  // debug: in neither
        ]
        let captured = CapturedLog()
        var swiftLog = Logger(label: "greylag") { _ in CapturingHandler(log: captured) }
        swiftLog.logLevel = .info
        let viaSwiftLog = GreylistService(policy: GreylistPolicy(), store: store, logger: swiftLog)
        for (v, q) in cases { viaSwiftLog.log(v, q) }
        let out = capture { logger in
            let direct = GreylistService(policy: GreylistPolicy(), store: store, logger: logger)
            for (v, q) in cases { direct.log(v, q) }
        }
        // `TIME info greylag: MESSAGE` against the capturing handler's `info MESSAGE`.
        let lines = out.split(separator: "\n").map { line -> String in
            let words = line.split(separator: " ", maxSplits: 3)
            return words.count == 4 && words[2] == "greylag:" ? "\(words[1]) \(words[3])" : String(line)
        }
        #expect(lines == captured.all)
        #expect(lines.count == 6)
        #expect(lines.first == #"info defer: client=192.0.2.7 network=192.0.2.0/24 sender=<a\x01\x0a@example.org> "#
                + #"recipient=<b\u{202E}@example.net> reason=new_triplet retry_in=300s via=policy"#)
        #expect(lines.last == #"info pass: client=2001:db8::7 sender=<> recipient=<c@example.net> reason=authenticated "#
                + #"sasl_user=jo\x7fe via=milter"#)
    }

    @Test func overflowIsDroppedAndCounted() {
        let out = capture(maxBuffered: 200) { logger in
            for i in 0..<50 { logger.info("line \(i) with some padding to fill the buffer quickly") }
        }
        let lines = out.split(separator: "\n")
        #expect(lines.count == 3)  // two lines fit in 200 bytes, then the drop notice
        #expect(out.contains("greylag: 48 log line(s) dropped"))
    }

    @Test func directLinesOverflowIsDroppedAndCounted() throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.path + "/greylag.db")
        defer { Task { try? await store.close() } }
        let query = GreylistQuery(clientAddress: "192.0.2.7", sender: "a@example.org", recipient: "b@example.net")
        let out = capture(maxBuffered: 400) { logger in
            let service = GreylistService(policy: GreylistPolicy(), store: store, logger: logger)
            for _ in 0..<50 { service.log(Verdict(action: .defer, reason: .newTriplet, timeLeft: 300), query) }
        }
        let lines = out.split(separator: "\n")
        #expect(lines.count == 3)  // two lines of 153 bytes fit in 400, then the drop notice
        #expect(lines.first?.hasSuffix(" info greylag: defer: client=192.0.2.7 sender=<a@example.org> "
                                       + "recipient=<b@example.net> reason=new_triplet retry_in=300s via=policy") == true)
        #expect(out.contains("greylag: 48 log line(s) dropped"))
    }
}
