import Foundation
import GreylagCore
import GreylagDNS
import GreylagServer
import GreylagStore
import Milter
import NIOCore
import PolicyProtocol

/// The fuzz targets: what a peer or a configuration file can feed greylag,
/// run through the same code the daemon runs. Each takes any bytes and must
/// return without crashing; errors are the expected outcome of bad input.
/// The libFuzzer entry points (`Fuzz/`, built by `scripts/fuzz.sh`) and the
/// regression tests of kept inputs call these.
public enum Fuzz {
    public static let targets: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
        "policy": policy, "milter": milter, "config": config, "admin": admin, "numbers": numbers,
        "dns": dns,
    ]

    static let engine = Engine()
    static let now: Int64 = 1_800_000_000

    /// Bytes from a policy client: decoded into requests as they would
    /// arrive, each turned into a query, decided by the engine's rules, and
    /// answered with a defer and a pass.
    @Sendable public static func policy(_ bytes: UnsafeRawBufferPointer) {
        var buffer = ByteBuffer(bytes: bytes)
        var decoder = PolicyRequestDecoder()
        // A plain listener and a `policy.helper_listen` one (greylag_* honoured).
        var sessions = [PolicySession(config: PolicyReplyConfig()),
                        PolicySession(config: PolicyReplyConfig(), helperAttributes: true)]
        var out = ByteBuffer()
        do {
            while let request = try decoder.decode(buffer: &buffer) {
                for i in sessions.indices {
                    _ = sessions[i].helperNotes(request)
                    guard case .decide(let query) = sessions[i].requestReceived(request) else { continue }
                    _ = engine.prepare(query, now: now)
                    let triplet = engine.triplet(for: query)
                    for verdict in [Verdict(action: .defer, reason: .newTriplet, timeLeft: 300, triplet: triplet),
                                    Verdict(action: .pass, reason: .delayElapsed, delayed: 400, triplet: triplet)] {
                        sessions[i].verdictReceived(verdict, for: request, now: now).write(into: &out)
                    }
                }
            }
            _ = try decoder.decodeLast(buffer: &buffer, seenEOF: true)
        } catch {
            // A bad request closes the connection: the expected outcome.
        }
    }

    /// Bytes from an MTA on a milter connection: packets decoded, run
    /// through the session, every recipient deferred, replies encoded.
    @Sendable public static func milter(_ bytes: UnsafeRawBufferPointer) {
        var buffer = ByteBuffer(bytes: bytes)
        var decoder = MilterDecoder()
        var session = MilterSession(config: MilterReplyConfig())
        var out = ByteBuffer()
        do {
            while let command = try decoder.decode(buffer: &buffer) {
                switch session.received(command, now: now) {
                case .reply(let responses):
                    for r in responses { r.write(into: &out) }
                case .decide(var query):
                    // A null-sender message's recipients are decided one
                    // after another at DATA or end of message, as the handler does.
                    while true {
                        _ = engine.prepare(query, now: now)
                        let verdict = Verdict(action: .defer, reason: .newTriplet, timeLeft: 300,
                                              triplet: engine.triplet(for: query))
                        guard session.isDecidingHeld else {
                            session.verdictReceived(verdict).write(into: &out)
                            break
                        }
                        switch session.heldVerdictReceived(verdict, now: now) {
                        case .decide(let next):
                            query = next
                            continue
                        case .reply(let responses):
                            for r in responses { r.write(into: &out) }
                        case .none:
                            break
                        }
                        break
                    }
                default:
                    break
                }
            }
        } catch {
            // A bad packet closes the connection: the expected outcome.
        }
    }

    /// A configuration file's text.
    @Sendable public static func config(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? ConfigurationLoader.parse(text, file: "/fuzz/greylag.toml")
    }

    // MARK: DNS answers

    static let dnsSettings = DNSSettings(servers: [])

    /// A DNS response as a server (or a spoofer) could send it: decoded,
    /// then read as the answer to its own question, CNAME chains followed.
    /// Every name the decoder gives must read back as the same name (the
    /// client asks for CNAME targets by that text).
    @Sendable public static func dns(_ bytes: UnsafeRawBufferPointer) {
        guard let m = try? DNSWire.decode(bytes) else { return }
        for r in m.answers + m.authority where !r.name.isEmpty {
            guard (try? DNSWire.canonical(r.name)) == r.name else { fatalError("dns: the name \(r.name) does not read back") }
        }
        guard let q = m.question, !q.name.isEmpty, let type = DNSRecordType(rawValue: q.type) else { return }
        var chain = DNSAnswerChain(name: q.name, type: type, settings: dnsSettings)
        // The same answer again for every name it asks next: a chain ends within its link limit.
        for _ in 0...DNSAnswerChain.maxLinks + 1 {
            guard case .ask = chain.read(m) else { return }
        }
        fatalError("dns: a CNAME chain went on past \(DNSAnswerChain.maxLinks) links")
    }

    // MARK: Admin API bodies

    /// The store the admin target writes to: a SQLite file in a temporary
    /// directory, shared by all inputs of a run.
    static let adminService: AdminService = {
        let dir = NSTemporaryDirectory() + "greylag-fuzz-admin-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let store = try! SQLiteStore(path: dir + "/greylag.db")
        return AdminService(store: store, service: nil, policy: GreylistPolicy(), clock: { now })
    }()

    /// Waits for an async call from the fuzzer's synchronous entry point.
    static func wait<T: Sendable>(_ work: @escaping @Sendable () async -> T) -> T {
        let box = WaitBox<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            box.value = await work()
            done.signal()
        }
        done.wait()
        return box.value!
    }

    /// An admin API body: decoded as the HTTP API decodes it, turned into an
    /// add request for the whitelist (even length) or the blacklist, carried
    /// out by `AdminService` on a SQLite store, then removed again. An entry
    /// with an expiry out of range must be refused, never stored.
    @Sendable public static func admin(_ bytes: UnsafeRawBufferPointer) {
        let list: ListKind = bytes.count % 2 == 0 ? .whitelist : .blacklist
        // Decoded as the HTTP API decodes it.
        guard let request = try? AdminRequest.entry(list: list, json: Data(bytes)), let field = request.field else { return }
        let service = adminService
        let response = wait { await service.handle(request) }
        if let e = request.expiresIn, e <= 0 || e > NumericLimits.maxDuration, response.ok {
            fatalError("admin: expires_in \(e) was accepted")
        }
        if response.ok, let expires = response.entries?.first?.expires, expires > now + NumericLimits.maxDuration {
            fatalError("admin: an entry expires at \(expires), past the limit")
        }
        if response.ok {
            let remove = AdminRequest(command: .remove, list: list, field: field, value: request.value)
            _ = wait { await service.handle(remove) }
        }
    }

    // MARK: Numeric configuration values

    /// Every numeric key of the configuration, with its section.
    static let numericKeys: [(section: String, key: String)] = [
        ("greylist", "delay"), ("greylist", "greylist"), ("greylist", "block_expire"), ("greylist", "retry_window"),
        ("greylist", "record_expire"), ("greylist", "pass_ttl"), ("greylist", "autowhite"),
        ("greylist", "record_expire_good"), ("greylist", "client_autowhitelist"), ("greylist", "ipv4_prefix"),
        ("greylist", "ipv6_prefix"), ("server", "threads"), ("policy", "idle_timeout"), ("policy", "socket_mode"),
        ("policy", "max_connections"), ("milter", "socket_mode"), ("milter", "max_connections"), ("store", "port"),
        ("store", "max_connections"), ("store", "expiry_interval"), ("store", "sizes_interval"),
        ("store", "expiry_batch"), ("store", "timeout"), ("log", "stats_interval"), ("admin", "socket_mode"),
        ("http", "history_keep"), ("reload", "watch_interval"), ("greylist", "dns_deadline"),
        ("selective", "greylist_threshold"), ("selective", "allow_threshold"), ("selective", "reject_threshold"),
    ]

    /// A TOML document of numeric keys whose values come from the input,
    /// 10 bytes each: the key, the form (integer, float, duration text,
    /// digits as text, small integer, octal mode text) and 8 bytes of value.
    /// Each value is either refused with an error or in its documented range.
    @Sendable public static func numbers(_ bytes: UnsafeRawBufferPointer) {
        var sections: [String: [String: String]] = ["store": ["backend": "\"postgresql\""]]
        var i = 0
        while i + 10 <= bytes.count {
            let (section, key) = numericKeys[Int(bytes[i]) % numericKeys.count]
            var raw: UInt64 = 0
            for k in 0..<8 { raw = raw << 8 | UInt64(bytes[i + 2 + k]) }
            let v = Int64(bitPattern: raw)
            let text: String
            switch bytes[i + 1] % 6 {
            case 0: text = "\(v)"
            case 1:
                let d = Double(bitPattern: raw)
                text = d.isNaN ? "nan" : d.isInfinite ? (d < 0 ? "-inf" : "inf") : "\(d)"
            case 2: text = "\"\(v.magnitude)\(["s", "m", "h", "d", "w", "d1s", "w5m"][Int(bytes[i + 1] / 6) % 7])\""
            case 3: text = "\"\(v)\""
            case 4: text = "\(v % 1000)"
            default: text = "\"0\(String(v.magnitude, radix: 8))\""
            }
            if sections[section, default: [:]][key] == nil { sections[section, default: [:]][key] = text }
            i += 10
        }
        var toml = ""
        for (name, keys) in sections.sorted(by: { $0.key < $1.key }) {
            toml += "[\(name)]\n"
            for (key, value) in keys.sorted(by: { $0.key < $1.key }) { toml += "\(key) = \(value)\n" }
        }
        guard let c = try? ConfigurationLoader.parse(toml, file: "/fuzz/greylag.toml") else { return }
        func check(_ ok: Bool, _ what: String) {
            if !ok { fatalError("numbers: \(what) out of range was accepted from:\n\(toml)") }
        }
        let max = NumericLimits.maxDuration
        for (name, d) in [("delay", c.policy.delay), ("retry_window", c.policy.retryWindow), ("pass_ttl", c.policy.passTTL),
                          ("idle_timeout", c.idleTimeout), ("expiry_interval", c.expiryInterval),
                          ("sizes_interval", c.sizesInterval), ("stats_interval", c.statsInterval),
                          ("history_keep", c.historyKeep)] {
            check((0...max).contains(d), name)
        }
        check(c.storeTimeout.isFinite && (0.001...3600).contains(c.storeTimeout), "store.timeout")
        check(c.watchInterval == 0 || (0.1...86_400).contains(c.watchInterval), "reload.watch_interval")
        check((0...256).contains(c.threads), "server.threads")
        check((1...1_000_000).contains(c.policyMaxConnections) && (1...1_000_000).contains(c.milterMaxConnections),
              "max_connections")
        check((1...100_000).contains(c.expiryBatch), "store.expiry_batch")
        check([c.socketMode, c.milterSocketMode, c.adminSocketMode].allSatisfy { (0...0o777).contains($0) }, "socket_mode")
        check((0...1_000_000).contains(c.policy.clientAutowhitelist), "client_autowhitelist")
        check(c.dnsChecks.deadline.isFinite && (0.01...60).contains(c.dnsChecks.deadline), "greylist.dns_deadline")
        check([c.dns.greylistThreshold, c.dns.allowThreshold, c.dns.rejectThreshold ?? 0]
                .allSatisfy { (-100_000...100_000).contains($0) }, "selective thresholds")
        check((0...32).contains(c.policy.keying.ipv4Prefix) && (0...128).contains(c.policy.keying.ipv6Prefix), "prefix")
        if case .postgresql(let pg) = c.backend {
            check((1...65535).contains(pg.port) && (1...1000).contains(pg.maxConnections), "store.port/max_connections")
        }
    }
}

/// The result of an async call, handed from its task to the waiting thread
/// (the semaphore orders the write before the read).
final class WaitBox<T>: @unchecked Sendable {
    var value: T?
}
