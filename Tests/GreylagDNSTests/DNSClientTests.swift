@testable import GreylagDNS
import Logging
import NIOCore
import NIOPosix
import Testing

/// A loopback UDP server of the test's own: counts the queries it gets and
/// answers each as `answer` says (or not at all).
final class TestResponder: Sendable {
    enum Reply: Sendable {
        /// No answer at all.
        case silent
        /// An A record 192.0.2.1 with this TTL, after `delay` milliseconds.
        case address(ttl: UInt32, delayMs: Int64 = 0)
        /// An empty answer with this RCODE.
        case rcode(UInt8)
        /// An answer with another ID first, then one with the right ID from
        /// the right port: only the second may count.
        case wrongIDFirst
    }

    let channel: any Channel
    var address: DNSServerAddress { DNSServerAddress(host: "127.0.0.1", port: channel.localAddress!.port!) }

    init(group: any EventLoopGroup, reply: Reply) async throws {
        channel = try await DatagramBootstrap(group: group)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(Handler(reply: reply))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func countQueries() async -> Int {
        (try? await channel.eventLoop.submit { try self.channel.pipeline.syncOperations.handler(type: Handler.self).count }.get()) ?? -1
    }

    func close() async { try? await channel.close() }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let reply: Reply
        var count = 0
        init(reply: Reply) { self.reply = reply }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            count += 1
            let query = Array(envelope.data.readableBytesView)
            guard query.count > 12 else { return }
            // The question: from byte 12 to the end of QNAME plus 4.
            var end = 12
            while end < query.count && query[end] != 0 { end += Int(query[end]) + 1 }
            let question = Array(query[12..<min(query.count, end + 5)])
            func response(id: [UInt8], rcode: UInt8, ttl: UInt32?) -> ByteBuffer {
                var b: [UInt8] = id + [0x81, 0x80 | rcode, 0, 1, 0, ttl == nil ? 0 : 1, 0, 0, 0, 0] + question
                if let ttl {
                    b += [0xc0, 12, 0, 1, 0, 1, UInt8(ttl >> 24), UInt8((ttl >> 16) & 0xff), UInt8((ttl >> 8) & 0xff),
                          UInt8(ttl & 0xff), 0, 4, 192, 0, 2, 1]
                }
                return context.channel.allocator.buffer(bytes: b)
            }
            let id = Array(query[0..<2])
            let to = envelope.remoteAddress
            switch reply {
            case .silent:
                return
            case .address(let ttl, let delay):
                let out = AddressedEnvelope(remoteAddress: to, data: response(id: id, rcode: 0, ttl: ttl))
                if delay > 0 {
                    let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
                    context.eventLoop.scheduleTask(in: .milliseconds(delay)) {
                        ctx.value.writeAndFlush(NIOAny(out), promise: nil)
                    }
                } else {
                    context.writeAndFlush(wrapOutboundOut(out), promise: nil)
                }
            case .rcode(let r):
                context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: to, data: response(id: id, rcode: r, ttl: nil))),
                                      promise: nil)
            case .wrongIDFirst:
                let wrong = [id[0] ^ 0xff, id[1]]
                context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: to, data: response(id: wrong, rcode: 0, ttl: 1))),
                              promise: nil)
                context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: to, data: response(id: id, rcode: 0, ttl: 77))),
                                      promise: nil)
            }
        }
    }
}

@Suite struct DNSClientTests {
    static let group = MultiThreadedEventLoopGroup.singleton
    static let logger = Logger(label: "dns-test")

    static func client(_ servers: [DNSServerAddress], timeout: Double = 1, attempts: Int = 1,
                       configure: (inout DNSSettings) -> Void = { _ in }) -> DNSClient {
        var s = DNSSettings(servers: servers, timeout: timeout, attempts: attempts)
        configure(&s)
        return DNSClient(settings: s, group: group, logger: logger)
    }

    @Test func aSecondLookupIsAnsweredFromTheCacheWithoutAPacket() async throws {
        let responder = try await TestResponder(group: Self.group, reply: .address(ttl: 300))
        defer { Task { await responder.close() } }
        let client = Self.client([responder.address])
        #expect(await client.lookup("cached.example", .a) == .records([.a([192, 0, 2, 1])]))
        #expect(await responder.countQueries() == 1)
        #expect(await client.lookup("CACHED.example.", .a) == .records([.a([192, 0, 2, 1])]))
        #expect(await responder.countQueries() == 1, "the second lookup sent a packet")
        // Another type is another question.
        _ = await client.lookup("cached.example", .aaaa)
        #expect(await responder.countQueries() == 2)
    }

    @Test func identicalLookupsInFlightShareOneQuery() async throws {
        let slow = try await TestResponder(group: Self.group, reply: .address(ttl: 0, delayMs: 200))
        defer { Task { await slow.close() } }
        let client = Self.client([slow.address])
        let results = await withTaskGroup(of: DNSLookupResult.self) { group in
            for _ in 0..<20 { group.addTask { await client.lookup("shared.example", .a) } }
            var all: [DNSLookupResult] = []
            for await r in group { all.append(r) }
            return all
        }
        #expect(results.count == 20 && results.allSatisfy { $0 == .records([.a([192, 0, 2, 1])]) })
        #expect(await slow.countQueries() == 1)
        // TTL 0: not cached, so the next lookup asks again.
        _ = await client.lookup("shared.example", .a)
        #expect(await slow.countQueries() == 2)
    }

    @Test func anAnswerWithAnotherIDIsIgnored() async throws {
        let responder = try await TestResponder(group: Self.group, reply: .wrongIDFirst)
        defer { Task { await responder.close() } }
        let client = Self.client([responder.address])
        // The wrong-ID answer has TTL 1 and the right one 77; both say 192.0.2.1,
        // so the test looks at what was cached: a lookup 2 s later is still cached.
        #expect(await client.lookup("spoof.example", .a) == .records([.a([192, 0, 2, 1])]))
        #expect(await responder.countQueries() == 1)
        #expect(DNSClient.matches(try DNSWire.decode(Self.answer(id: 7)), id: 7, name: "q.example", type: .a))
        #expect(!DNSClient.matches(try DNSWire.decode(Self.answer(id: 7)), id: 8, name: "q.example", type: .a))
        #expect(!DNSClient.matches(try DNSWire.decode(Self.answer(id: 7)), id: 7, name: "other.example", type: .a))
        #expect(!DNSClient.matches(try DNSWire.decode(Self.answer(id: 7)), id: 7, name: "q.example", type: .txt))
        #expect(!DNSClient.matches(try DNSWire.decode(Self.answer(id: 7, flags: 0x0100)), id: 7, name: "q.example", type: .a),
                "a packet without QR is not an answer")
    }

    static func answer(id: UInt16, flags: UInt16 = 0x8180) -> [UInt8] {
        var p = Packet()
        p.header(id: id, flags: flags)
        p.name("q.example"); p.u16(1); p.u16(1)
        return p.bytes
    }

    @Test func lookupsOverTheCapFailAtOnce() async throws {
        let silent = try await TestResponder(group: Self.group, reply: .silent)
        defer { Task { await silent.close() } }
        let client = Self.client([silent.address], timeout: 0.5) { $0.maxInFlight = 1 }
        async let first = client.lookup("one.example", .a)
        try await Task.sleep(for: .milliseconds(50))
        let clock = ContinuousClock()
        var r: DNSLookupResult? = nil
        let took = await clock.measure { r = await client.lookup("two.example", .a) }
        #expect(r == .failure(.timeout) && took < .milliseconds(100))
        #expect(await first == .failure(.timeout))
    }

    @Test func noServersBadNamesAndShutdown() async throws {
        let none = Self.client([])
        #expect(await none.lookup("a.example", .a) == .failure(.noResolver))
        #expect(await none.lookup("a..example", .a) == .failure(.badName))
        #expect(await none.lookup(String(repeating: "a", count: 300), .a) == .failure(.badName))
        let silent = try await TestResponder(group: Self.group, reply: .silent)
        defer { Task { await silent.close() } }
        let client = Self.client([silent.address], timeout: 5)
        let clock = ContinuousClock()
        let took = await clock.measure {
            async let pending = client.lookup("slow.example", .a)
            try? await Task.sleep(for: .milliseconds(100))
            client.shutdown()
            #expect(await pending == .failure(.timeout))
        }
        // Well under the 5 s timeout; the margin is for a loaded machine
        // (the full suite took 2.2 s here once).
        #expect(took < .seconds(4), "shutdown did not end the lookup in flight")
        #expect(await client.lookup("after.example", .a) == .failure(.noResolver))
    }
}

/// The client's deadlines, measured on the wall clock. scripts/test.sh runs
/// this suite on its own after the others: beside a full parallel run on two
/// cores, the cooperative threads that resume a lookup are late by seconds,
/// which says nothing about the client.
@Suite(.serialized) struct DNSDeadlineTests {
    @Test func aServerThatNeverAnswersCostsTheDeadlineOncePerName() async throws {
        let silent = try await TestResponder(group: DNSClientTests.group, reply: .silent)
        defer { Task { await silent.close() } }
        let client = DNSClientTests.client([silent.address], timeout: 0.4, attempts: 2)
        let clock = ContinuousClock()
        var result: DNSLookupResult? = nil
        let first = await clock.measure { result = await client.lookup("dead.example", .txt) }
        #expect(result == .failure(.timeout))
        #expect(first >= .milliseconds(380) && first < .milliseconds(700), "took \(first)")
        #expect(await silent.countQueries() == 2, "two attempts within the deadline")
        let second = await clock.measure { result = await client.lookup("dead.example", .txt) }
        #expect(result == .failure(.timeout))
        #expect(second < .milliseconds(50), "the failure was not cached: \(second)")
        #expect(await silent.countQueries() == 2)
    }

    /// A port nobody listens on: the kernel's ICMP port unreachable ends
    /// the try at once instead of at its share of the deadline.
    @Test func aClosedPortFailsWithoutWaitingForTheDeadline() async throws {
        let gone = try await TestResponder(group: DNSClientTests.group, reply: .silent)
        let address = gone.address
        await gone.close()
        let client = DNSClientTests.client([address], timeout: 3, attempts: 2)
        let clock = ContinuousClock()
        var r: DNSLookupResult? = nil
        let took = await clock.measure { r = await client.lookup("closed.example", .a) }
        #expect(r == .failure(.timeout))
        #expect(took < .seconds(1), "took \(took)")
    }

    @Test func servfailMovesOnToTheNextServer() async throws {
        let failing = try await TestResponder(group: DNSClientTests.group, reply: .rcode(2))
        let good = try await TestResponder(group: DNSClientTests.group, reply: .address(ttl: 60))
        defer { Task { await failing.close(); await good.close() } }
        let client = DNSClientTests.client([failing.address, good.address], timeout: 2)
        let clock = ContinuousClock()
        var r: DNSLookupResult? = nil
        let took = await clock.measure { r = await client.lookup("next.example", .a) }
        #expect(r == .records([.a([192, 0, 2, 1])]))
        #expect(took < .milliseconds(500), "the second server was asked only after the first one's share: \(took)")
        #expect(await failing.countQueries() == 1)
        #expect(await good.countQueries() == 1)
        // Only SERVFAIL: a failure, cached briefly.
        let onlyFailing = DNSClientTests.client([failing.address], timeout: 1)
        #expect(await onlyFailing.lookup("broken.example", .a) == .failure(.serverFailure))
        #expect(await onlyFailing.lookup("broken.example", .a) == .failure(.serverFailure))
        #expect(await failing.countQueries() == 2)
        let refusing = try await TestResponder(group: DNSClientTests.group, reply: .rcode(5))
        defer { Task { await refusing.close() } }
        #expect(await DNSClientTests.client([refusing.address]).lookup("x.example", .a) == .failure(.refused))
        let nx = try await TestResponder(group: DNSClientTests.group, reply: .rcode(3))
        defer { Task { await nx.close() } }
        #expect(await DNSClientTests.client([nx.address]).lookup("x.example", .a) == .nxDomain)
    }
}
