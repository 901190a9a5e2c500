import Foundation
import GreylagCore
import GreylagDNS
@testable import GreylagSPF
import GreylagTestSupport
import Testing

/// The openspf RFC 7208 test suite (pyspf 2.0.14's `test/rfc7208-tests.yml`,
/// converted to JSON by scripts/lib/spf-suite.sh; `GREYLAG_SPF_SUITE` names
/// the file). One case per test of the suite, each run against an in-memory
/// resolver holding its scenario's zone data, the way pyspf's own driver
/// (test/testspf.py) serves it.
///
/// Nothing is skipped. One comparison is looser than the suite's, listed in
/// `caseInsensitiveExplanations` with why.
@Suite struct SPFSuiteTests {
    /// Without the suite: skipped in a plain `swift test`; a failure under
    /// GREYLAG_E2E=1 (scripts/test.sh fetches it).
    @Test(.disabled(if: SPFSuite.problem != nil && !TestGate.e2e,
                    Comment(rawValue: "not run: \(SPFSuite.problem ?? "")")))
    func suiteIsAvailable() throws {
        try TestGate.check("the RFC 7208 suite", problem: SPFSuite.problem)
        #expect(SPFSuite.cases.count >= 200)
    }

    /// Explanations compared ignoring case, and why.
    static let caseInsensitiveExplanations: [String: String] = [
        // pyspf writes the nibbles of %{i} for IPv6 in upper case; RFC 7208
        // section 7.4's example writes them in lower case, as greylag does.
        // DNS names compare without case, so only this explanation differs.
        "Macro expansion rules: v-macro-ip6": "upper-case IPv6 nibbles in pyspf's expected text",
    ]

    @Test(arguments: SPFSuite.cases)
    func suiteCase(_ c: SPFSuiteCase) async throws {
        let ip = try #require(IPAddress(c.host), "host \(c.host)")
        let evaluator = SPFEvaluator(resolver: c.zone)
        let outcome = await evaluator.check(ip: ip, mailFrom: c.mailFrom, helo: c.helo)
        #expect(c.results.contains(outcome.result),
                "\(c): got \(outcome.result.rawValue) (\(outcome.problem ?? "-")), want \(c.results.map(\.rawValue))")
        if let want = c.explanation {
            let got = outcome.explanation ?? "DEFAULT"
            if Self.caseInsensitiveExplanations[c.description] != nil {
                #expect(got.lowercased() == want.lowercased())
            } else {
                #expect(got == want, "\(c)")
            }
        }
        #expect(outcome.dnsLookups <= 11 && outcome.voidLookups <= 3)
    }
}

/// One test of the suite.
struct SPFSuiteCase: Sendable, CustomStringConvertible, CustomTestStringConvertible {
    var scenario: String
    var name: String
    var host: String
    var mailFrom: String
    var helo: String
    var results: [SPFResult]
    var explanation: String?
    var zone: SuiteZone

    var description: String { "\(scenario): \(name)" }
    var testDescription: String { description }
}

enum SPFSuite {
    static var path: String? { ProcessInfo.processInfo.environment["GREYLAG_SPF_SUITE"] }

    static var problem: String? {
        guard let path, !path.isEmpty else { return "GREYLAG_SPF_SUITE is not set (scripts/test.sh fetches the suite)" }
        return FileManager.default.fileExists(atPath: path) ? nil : "\(path) does not exist"
    }

    static let cases: [SPFSuiteCase] = {
        guard problem == nil, let path, let data = FileManager.default.contents(atPath: path),
              let scenarios = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return [] }
        var out: [SPFSuiteCase] = []
        for s in scenarios {
            let title = s["description"] as? String ?? "?"
            let zone = SuiteZone(s["zonedata"] as? [String: Any] ?? [:])
            let tests = s["tests"] as? [String: Any] ?? [:]
            for name in tests.keys.sorted() {
                guard let t = tests[name] as? [String: Any] else { continue }
                var results: [SPFResult] = []
                if let r = t["result"] as? String { results = [SPFResult(rawValue: r)].compactMap { $0 } }
                if let r = t["result"] as? [String] { results = r.compactMap { SPFResult(rawValue: $0) } }
                out.append(SPFSuiteCase(scenario: title, name: name, host: t["host"] as? String ?? "",
                                        mailFrom: t["mailfrom"] as? String ?? "", helo: t["helo"] as? String ?? "",
                                        results: results, explanation: t["explanation"] as? String, zone: zone))
            }
        }
        return out
    }()
}

/// A scenario's zone data as pyspf's test driver serves it: SPF-type records
/// become TXT records for a name without TXT records (`TXT: NONE` stops
/// that), `TIMEOUT` times out the name (or one type), a missing name under
/// `error.` times out, a CNAME is followed one level.
struct SuiteZone: DNSResolving {
    enum Entry: Sendable, Hashable {
        case record(DNSRecordType, DNSRecordData)
        case timeout(DNSRecordType?)
    }

    var names: [String: [Entry]] = [:]

    init(_ data: [String: Any]) {
        for (rawName, value) in data {
            let name = Self.key(rawName)
            var entries: [Entry] = []
            var generated: [Entry] = []
            var hasTXT = false
            for item in value as? [Any] ?? [] {
                if let s = item as? String {
                    if s == "TIMEOUT" { entries.append(.timeout(nil)) }
                    continue
                }
                guard let map = item as? [String: Any] else { continue }
                for (type, v) in map {
                    if v as? String == "TIMEOUT" {
                        if let t = Self.type(type) { entries.append(.timeout(t)) }
                        continue
                    }
                    switch type {
                    case "TXT", "SPF":
                        let strings: [String] = (v as? String).map { [$0] } ?? (v as? [String] ?? [])
                        if type == "TXT" { hasTXT = true }
                        if strings == ["NONE"] { continue }
                        let record = Entry.record(.txt, .txt(strings.map { Array($0.utf8) }))
                        if type == "TXT" { entries.append(record) } else { generated.append(record) }
                    case "A":
                        if let s = v as? String, case .v4(let a)? = IPAddress(s) {
                            entries.append(.record(.a, .a([UInt8(a >> 24), UInt8((a >> 16) & 0xFF), UInt8((a >> 8) & 0xFF), UInt8(a & 0xFF)])))
                        }
                    case "AAAA":
                        if let s = v as? String, let bytes = Self.v6Bytes(s) { entries.append(.record(.aaaa, .aaaa(bytes))) }
                    case "MX":
                        if let pair = v as? [Any], pair.count == 2, let pref = pair[0] as? Int, let host = pair[1] as? String {
                            entries.append(.record(.mx, .mx(preference: UInt16(clamping: pref), exchange: Self.key(host))))
                        }
                    case "PTR":
                        if let s = v as? String { entries.append(.record(.ptr, .ptr(Self.key(s)))) }
                    case "CNAME":
                        if let s = v as? String { entries.append(.record(.cname, .cname(Self.key(s)))) }
                    default:
                        break
                    }
                }
            }
            if !hasTXT { entries += generated }
            names[name] = entries
        }
    }

    static func key(_ name: String) -> String {
        var n = name.lowercased()
        while n.hasSuffix(".") { n.removeLast() }
        return n
    }

    static func type(_ s: String) -> DNSRecordType? {
        switch s {
        case "TXT", "SPF": return .txt
        case "A": return .a
        case "AAAA": return .aaaa
        case "MX": return .mx
        case "PTR": return .ptr
        case "CNAME": return .cname
        default: return nil
        }
    }

    static func v6Bytes(_ s: String) -> [UInt8]? {
        guard let ip = IPAddress(s) else { return nil }
        var high: UInt64 = 0, low: UInt64 = 0
        switch ip {
        case .v4(let a): low = 0xFFFF_0000_0000 | UInt64(a)
        case .v6(let h, let l): high = h; low = l
        }
        var out: [UInt8] = []
        for word in [high, low] { for k in stride(from: 56, through: 0, by: -8) { out.append(UInt8((word >> UInt64(k)) & 0xFF)) } }
        return out
    }

    func lookup(_ name: String, _ type: DNSRecordType) async -> DNSLookupResult {
        answer(Self.key(name), type, followCNAME: true)
    }

    private func answer(_ name: String, _ type: DNSRecordType, followCNAME: Bool) -> DNSLookupResult {
        guard let entries = names[name] else {
            return name.hasPrefix("error.") ? .failure(.timeout) : .nxDomain
        }
        var found: [DNSRecordData] = []
        for entry in entries {
            switch entry {
            case .timeout(nil):
                if found.isEmpty { return .failure(.timeout) }
                return .records(found)
            case .timeout(let t?):
                if t == type { return .failure(.timeout) }
            case .record(let t, let data):
                if t == type {
                    found.append(data)
                } else if t == .cname, followCNAME, case .cname(let target) = data {
                    if case .records(let r) = answer(target, type, followCNAME: false) { found += r }
                }
            }
        }
        return found.isEmpty ? .noData : .records(found)
    }
}
