import Foundation
import GreylagCore
import GreylagDNS

/// An SPF evaluator (RFC 7208) on any `DNSResolving`.
///
/// Every evaluation is bounded: the RFC's ten-lookup, void-lookup and MX/PTR
/// name limits, a hard cap on DNS questions (`SPFLimits.queries`), and
/// length caps on records and macro expansions; it never traps, whatever the
/// records, the identities or the resolver answer. A lookup costs at most the
/// resolver's own deadline.
public struct SPFEvaluator: Sendable {
    public let resolver: any DNSResolving
    public let limits: SPFLimits
    /// The `%{r}` macro of explanations: the name of the host doing the check.
    public var receivingHost: String = "unknown"
    /// The `%{t}` macro of explanations: seconds since the epoch.
    public var clock: @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }
    /// The monotonic time the evaluation's time limit is measured on.
    public var now: @Sendable () -> ContinuousClock.Instant = { .now }

    public init(resolver: any DNSResolving, limits: SPFLimits = .init()) {
        self.resolver = resolver
        self.limits = limits
    }

    /// RFC 7208 sections 2.3 and 2.4: the MAIL FROM identity, or
    /// `postmaster@HELO` for the null sender; a sender without a local part
    /// gets `postmaster`.
    public func check(ip: IPAddress, mailFrom: String, helo: String) async -> SPFOutcome {
        var from = mailFrom
        if from.hasPrefix("<") && from.hasSuffix(">") && from.count >= 2 { from = String(from.dropFirst().dropLast()) }
        if from.isEmpty {
            return await checkHost(ip: ip, domain: helo, sender: "postmaster@" + helo, helo: helo)
        }
        let domain: String
        if let at = from.lastIndex(of: "@") {
            domain = String(from[from.index(after: at)...])
        } else {
            // No "@": the whole is taken as the domain, as pyspf does.
            domain = from
            from = "postmaster@" + from
        }
        return await checkHost(ip: ip, domain: domain, sender: from, helo: helo)
    }

    /// RFC 7208 section 4: `check_host(<ip>, <domain>, <sender>)`.
    public func checkHost(ip: IPAddress, domain: String, sender: String, helo: String) async -> SPFOutcome {
        let run = SPFRun(evaluator: self, ip: ip, sender: sender, helo: helo)
        // Only a valid name (at most 253 octets) is evaluated; a longer one is
        // cut here so that it cannot swell a log line.
        let asked = SPFRun.canonical(String(decoding: domain.utf8.prefix(256), as: UTF8.self))
        var outcome = SPFOutcome(result: .none, domain: asked)
        do throws(SPFStop) {
            let r = try await run.checkHost(domain: domain, explain: true, validate: true)
            outcome.result = r.result
            outcome.matched = r.matched
            outcome.explanation = r.explanation
        } catch {
            switch error {
            case .perm(let why):
                outcome.result = .permerror
                outcome.problem = why
            case .temp(let why):
                outcome.result = .temperror
                outcome.problem = why
            }
        }
        outcome.dnsLookups = run.terms
        outcome.voidLookups = run.voids
        outcome.queries = run.queries
        return outcome
    }
}

/// The state of one evaluation.
final class SPFRun {
    struct Inner {
        var result: SPFResult
        var matched: SPFMatch?
        var explanation: String?
    }

    let evaluator: SPFEvaluator
    let limits: SPFLimits
    let ip: IPAddress
    let sender: [UInt8]
    let local: [UInt8]
    let senderDomain: [UInt8]
    let helo: [UInt8]
    var terms = 0
    var voids = 0
    var queries = 0
    private var cache: [String: DNSLookupResult] = [:]
    var validatedNames: [String]?
    private let deadline: ContinuousClock.Instant

    init(evaluator: SPFEvaluator, ip: IPAddress, sender: String, helo: String) {
        self.evaluator = evaluator
        self.limits = evaluator.limits
        self.deadline = evaluator.now().advanced(by: evaluator.limits.time)
        self.ip = ip
        let cap = evaluator.limits.expansionLength
        var s = Array(sender.utf8.prefix(cap))
        var l: [UInt8], d: [UInt8]
        if let at = s.lastIndex(of: UInt8(ascii: "@")) {
            l = Array(s[..<at])
            d = Array(s[(at + 1)...])
        } else {
            l = []
            d = s
        }
        if l.isEmpty {
            l = Array("postmaster".utf8)
            s = l + [UInt8(ascii: "@")] + d
        }
        self.sender = Array(s.prefix(cap))
        self.local = l
        self.senderDomain = d
        self.helo = Array(helo.utf8.prefix(cap))
    }

    /// Lower-cased, without a trailing dot.
    static func canonical(_ domain: String) -> String {
        var d = domain.lowercased()
        if d.hasSuffix(".") { d.removeLast() }
        return d
    }

    /// RFC 7208 section 4.3: a multi-label name, labels of 1 to 63 octets,
    /// at most 253 octets, no spaces or control characters.
    static func isValidDomain(_ domain: String) -> Bool {
        var bytes = Array(domain.utf8)
        if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        guard !bytes.isEmpty, bytes.count <= 253, bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return false }
        let labels = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return false }
        return labels.allSatisfy { !$0.isEmpty && $0.count <= 63 }
    }

    // MARK: - check_host

    func checkHost(domain: String, explain: Bool, validate: Bool) async throws(SPFStop) -> Inner {
        let name = Self.canonical(domain)
        if !Self.isValidDomain(domain) {
            if validate { return Inner(result: .none) }
            throw .perm("the target name '\(name.prefix(80))' is not a valid domain")
        }
        guard let record = try await selectRecord(name) else { return Inner(result: .none) }
        for directive in record.directives {
            if directive.mechanism.queriesDNS { try countTerm() }
            if let inner = try await matches(directive, domain: name) {
                var out = Inner(result: directive.qualifier.result, matched: inner)
                if out.result == .fail, explain, let exp = record.explanation {
                    out.explanation = await explanation(exp, domain: name)
                }
                return out
            }
        }
        if let redirect = record.redirect, !record.hasAll {
            try countTerm()
            let target = try await expandTarget(redirect, domain: name)
            guard Self.isValidDomain(target) else { throw .perm("redirect to an invalid domain") }
            let inner = try await checkHost(domain: target, explain: explain, validate: false)
            if inner.result == .none { throw .perm("redirect to '\(target.prefix(80))', which has no SPF record") }
            return inner
        }
        return Inner(result: .neutral)
    }

    private func countTerm() throws(SPFStop) {
        terms += 1
        if terms > limits.dnsMechanisms { throw .perm("more than \(limits.dnsMechanisms) DNS-querying terms") }
    }

    private func countVoid() throws(SPFStop) {
        voids += 1
        if voids > limits.voidLookups { throw .perm("more than \(limits.voidLookups) void lookups") }
    }

    /// Section 4.4 and 4.5: the one `v=spf1` record of `name`, nil for none.
    private func selectRecord(_ name: String) async throws(SPFStop) -> SPFRecord? {
        let answer = try await lookup(name, .txt)
        var found: [[UInt8]] = []
        switch answer {
        case .failure(let f): throw .temp("TXT lookup of '\(name.prefix(80))': \(f.rawValue)")
        case .nxDomain, .noData: return nil
        case .records(let records):
            for r in records {
                guard case .txt(let parts) = r else { continue }
                var bytes: [UInt8] = []
                var total = 0
                for p in parts { total += p.count }
                if total > limits.recordLength {
                    // Looked at only far enough to see whether it is SPF.
                    bytes = Array(parts.joined().prefix(7))
                    if SPFRecord.isSPF(bytes) { throw .perm("an SPF record longer than \(limits.recordLength) octets") }
                    continue
                }
                for p in parts { bytes += p }
                if SPFRecord.isSPF(bytes) && !found.contains(bytes) { found.append(bytes) }
            }
        }
        if found.count > 1 { throw .perm("'\(name.prefix(80))' has \(found.count) SPF records") }
        guard let bytes = found.first else { return nil }
        return try SPFRecord.parse(bytes)
    }

    // MARK: - Mechanisms

    /// nil: no match; otherwise the mechanism that made it match.
    private func matches(_ d: Directive, domain: String) async throws(SPFStop) -> SPFMatch? {
        let here = SPFMatch(mechanism: d.text, domain: domain)
        switch d.mechanism {
        case .all:
            return here
        case .ip4(let net, let prefix):
            guard case .v4 = ip else { return nil }
            return ip.masked(to: prefix) == IPAddress.v4(net).masked(to: prefix) ? here : nil
        case .ip6(let high, let low, let prefix):
            guard case .v6 = ip else { return nil }
            return ip.masked(to: prefix) == IPAddress.v6(high: high, low: low).masked(to: prefix) ? here : nil
        case .include(let spec):
            let target = try await expandTarget(spec, domain: domain)
            guard Self.isValidDomain(target) else { throw .perm("include of an invalid domain") }
            let inner = try await checkHost(domain: target, explain: false, validate: false)
            switch inner.result {
            case .pass: return inner.matched ?? here
            case .fail, .softfail, .neutral: return nil
            case .temperror: throw .temp("include:\(target.prefix(80)) gave temperror")
            case .permerror: throw .perm("include:\(target.prefix(80)) gave permerror")
            case .none: throw .perm("include:\(target.prefix(80)) has no SPF record")
            }
        case .a(let spec, let v4, let v6):
            let target = try await spec.asyncMapTarget(self, domain: domain)
            let addresses = try await addresses(of: target, countVoid: true)
            return addresses.contains(where: { inNetwork($0, v4: v4, v6: v6) }) ? here : nil
        case .mx(let spec, let v4, let v6):
            let target = try await spec.asyncMapTarget(self, domain: domain)
            let answer = try await lookup(target, .mx)
            var exchanges: [String] = []
            switch answer {
            case .failure(let f): throw .temp("MX lookup of '\(target.prefix(80))': \(f.rawValue)")
            case .nxDomain, .noData: try countVoid()
            case .records(let records):
                for r in records {
                    if case .mx(_, let exchange) = r { exchanges.append(exchange) }
                }
                if exchanges.isEmpty { try countVoid() }
            }
            if exchanges.count > limits.mxNames { throw .perm("more than \(limits.mxNames) MX names") }
            for exchange in exchanges {
                let name = Self.canonical(exchange)
                if name.isEmpty { continue } // a null MX (RFC 7505)
                let addresses = try await addresses(of: name, countVoid: false)
                if addresses.contains(where: { inNetwork($0, v4: v4, v6: v6) }) { return here }
            }
            return nil
        case .ptr(let spec):
            let target = try await spec.asyncMapTarget(self, domain: domain)
            let names = try await validatedPTRNames(countVoid: true)
            let t = Self.canonical(target)
            return names.contains(where: { $0 == t || $0.hasSuffix("." + t) }) ? here : nil
        case .exists(let spec):
            let target = try await expandTarget(spec, domain: domain)
            let answer = try await lookup(target, .a)
            switch answer {
            case .failure(let f): throw .temp("A lookup of '\(target.prefix(80))': \(f.rawValue)")
            case .nxDomain, .noData: try countVoid(); return nil
            case .records(let r): return r.isEmpty ? nil : here
            }
        }
    }

    private func inNetwork(_ address: IPAddress, v4: Int, v6: Int) -> Bool {
        switch (ip, address) {
        case (.v4, .v4): return ip.masked(to: v4) == address.masked(to: v4)
        case (.v6, .v6): return ip.masked(to: v6) == address.masked(to: v6)
        default: return false
        }
    }

    /// The A (IPv4 client) or AAAA (IPv6 client) addresses of `name`; a DNS
    /// failure is `temperror`.
    private func addresses(of name: String, countVoid void: Bool) async throws(SPFStop) -> [IPAddress] {
        let type: DNSRecordType = ip.isIPv4 ? .a : .aaaa
        switch try await lookup(name, type) {
        case .failure(let f): throw .temp("\(type) lookup of '\(name.prefix(80))': \(f.rawValue)")
        case .nxDomain, .noData:
            if void { try countVoid() }
            return []
        case .records(let records):
            let list = records.compactMap(Self.address)
            if list.isEmpty && void { try countVoid() }
            return list
        }
    }

    static func address(_ r: DNSRecordData) -> IPAddress? {
        switch r {
        case .a(let b) where b.count == 4:
            return .v4(UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3]))
        case .aaaa(let b) where b.count == 16:
            var high: UInt64 = 0, low: UInt64 = 0
            for k in 0..<8 { high = high << 8 | UInt64(b[k]) }
            for k in 8..<16 { low = low << 8 | UInt64(b[k]) }
            // An IPv4-mapped AAAA compares as IPv4, as the client would.
            if high == 0 && low >> 32 == 0xFFFF { return .v4(UInt32(truncatingIfNeeded: low)) }
            return .v6(high: high, low: low)
        default:
            return nil
        }
    }

    /// Section 5.5: the client's PTR names (the first `ptrNames`) whose
    /// addresses include the client. A failed PTR lookup gives none; a name
    /// whose address lookup fails is skipped.
    func validatedPTRNames(countVoid void: Bool) async throws(SPFStop) -> [String] {
        if let names = validatedNames { return names }
        var names: [String] = []
        switch try await lookup(Self.reverseName(ip), .ptr) {
        case .failure: break
        case .nxDomain, .noData: if void { try countVoid() }
        case .records(let records):
            var candidates: [String] = []
            for r in records {
                if case .ptr(let n) = r { candidates.append(Self.canonical(n)) }
            }
            for name in candidates.prefix(limits.ptrNames) where !name.isEmpty {
                let type: DNSRecordType = ip.isIPv4 ? .a : .aaaa
                guard case .records(let addrs) = try await lookup(name, type) else { continue }
                if addrs.compactMap(Self.address).contains(ip) { names.append(name) }
            }
        }
        validatedNames = names
        return names
    }

    /// `4.3.2.1.in-addr.arpa` or the nibbles under `ip6.arpa`.
    static func reverseName(_ ip: IPAddress) -> String {
        String(decoding: dotted(ip, reversed: true), as: UTF8.self) + (ip.isIPv4 ? ".in-addr.arpa" : ".ip6.arpa")
    }

    /// The `%{i}` value: dotted quad, or 32 dot-separated lower-case nibbles.
    static func dotted(_ ip: IPAddress, reversed: Bool = false) -> [UInt8] {
        var parts: [String]
        switch ip {
        case .v4(let a):
            parts = [a >> 24, (a >> 16) & 0xFF, (a >> 8) & 0xFF, a & 0xFF].map { String($0) }
        case .v6(let high, let low):
            parts = []
            for word in [high, low] {
                for k in stride(from: 60, through: 0, by: -4) { parts.append(String((word >> UInt64(k)) & 0xF, radix: 16)) }
            }
        }
        if reversed { parts.reverse() }
        return Array(parts.joined(separator: ".").utf8)
    }

    // MARK: - DNS

    func lookup(_ name: String, _ type: DNSRecordType) async throws(SPFStop) -> DNSLookupResult {
        let key = "\(type) \(name.lowercased())"
        if let hit = cache[key] { return hit }
        if evaluator.now() >= deadline { throw .temp("the evaluation took longer than \(limits.time)") }
        if queries >= limits.queries { throw .perm("more than \(limits.queries) DNS questions") }
        queries += 1
        var answer = await evaluator.resolver.lookup(name, type)
        // A name the resolver refuses to ask about cannot exist.
        if answer == .failure(.badName) { answer = .nxDomain }
        cache[key] = answer
        return answer
    }
}
