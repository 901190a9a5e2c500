import Foundation
import GreylagCore
import TOMLKit

/// The DNS checks: SPF keying, DNS lists and selective mode (see
/// docs/selective.md).
///
/// ```toml
/// [spf]
/// keying = "domain"                  # or "off", "mechanism"
///
/// [[dnslists]]
/// zone = "list.dnswl.example"
/// kind = "client"                    # or "sender", "helo"
/// weight = -5                        # below zero: an allow-list
/// codes = ["127.0.[0..255].[2..3]"]  # default: 127.0.0.0/8 but 127.255.255.0/24
/// mask = 4                           # bits of the last octet, one of which must be set
///
/// [selective]
/// enabled = true
/// greylist_threshold = 1
/// allow_threshold = -1
/// reject_threshold = 10              # unset: never rejects
/// reject_code = "554 5.7.1"
/// reject_text = "Listed by {client}"
/// suspect_unconfirmed_reverse = true
/// suspect_dynamic_names = true
/// dynamic_names_file = "dynamic-names"
///
/// [greylist]
/// dns_deadline = "2s"
/// ```
extension Reader {
    /// Weights and thresholds stay within this, so sums cannot overflow.
    static let weightRange = -1000...1000
    static let thresholdRange = -100_000...100_000
    /// Dynamic-name files larger than this are refused.
    static let maxDynamicNamesFile = 1 << 20

    mutating func readSPF(_ t: TOMLTable, into c: inout GreylagConfiguration) {
        for (key, value) in t {
            let k = "spf.\(key)"
            guard known("spf", key) else { continue }
            switch key {
            case "keying":
                if let v = string(k, value) {
                    if let m = DNSPolicy.SPFKeying(rawValue: v.lowercased()) { c.dns.spfKeying = m } else {
                        fail(k, "\"\(v.logEscaped)\" is not \"off\", \"domain\" or \"mechanism\"")
                    }
                }
            default:
                unread(k)
            }
        }
    }

    mutating func readDNSLists(_ value: any TOMLValueConvertible, into c: inout GreylagConfiguration) {
        guard let array = value.array else {
            fail("dnslists", "expected [[dnslists]] entries (an array of tables), found \(value.type)")
            return
        }
        var seen: [String: String] = [:]
        for (i, item) in array.enumerated() {
            let name = "dnslists[\(i + 1)]"
            guard let t = item.table else {
                fail(name, "expected a table with zone, kind and weight, found \(item.type)")
                continue
            }
            // An entry without keys changes nothing: it is let through.
            if t.isEmpty { continue }
            var zone: String? = nil
            var entry = DNSListZone(zone: "")
            var ok = true
            for (key, value) in t {
                let k = "\(name).\(key)"
                guard known("dnslists", key, as: k) else { ok = false; continue }
                switch key {
                case "zone":
                    if let v = string(k, value) {
                        var z = v.lowercased()
                        if z.hasSuffix(".") { z.removeLast() }
                        if DNSNames.isDomain(z) && z.contains(".") && z.utf8.count <= 200 {
                            zone = z
                        } else {
                            fail(k, "\"\(v.logEscaped)\" is not a DNS zone name such as \"zen.example.org\"")
                            ok = false
                        }
                    } else { ok = false }
                case "kind":
                    if let v = string(k, value) {
                        if let kind = DNSListZone.Kind(rawValue: v.lowercased()) { entry.kind = kind } else {
                            fail(k, "\"\(v.logEscaped)\" is not \"client\", \"sender\" or \"helo\"")
                            ok = false
                        }
                    } else { ok = false }
                case "weight":
                    if let v = integer(k, value, in: Self.weightRange) { entry.weight = v } else { ok = false }
                case "codes":
                    guard let items = strings(k, value) else { ok = false; continue }
                    if items.isEmpty { fail(k, "must name at least one answer pattern"); ok = false }
                    if items.count > 64 { fail(k, "at most 64 answer patterns"); ok = false; continue }
                    for item in items {
                        do {
                            entry.codes.patterns.append(try AnswerCodes.pattern(item))
                        } catch {
                            fail(k, item: item, error.description)
                            ok = false
                        }
                    }
                case "mask":
                    if let v = integer(k, value, in: 1...255) { entry.codes.mask = UInt8(v) } else { ok = false }
                default:
                    unread(k)
                }
            }
            guard let zone else {
                if t["zone"] == nil && ok { fail(name, "needs a zone") }
                continue
            }
            entry.zone = zone
            let id = "\(zone) \(entry.kind.rawValue)"
            if let other = seen[id] {
                fail("\(name).zone", "\(zone) is already a \(entry.kind.rawValue) list in \(other)")
                continue
            }
            seen[id] = name
            if ok { c.dnsChecks.lists.append(entry) }
        }
    }

    mutating func readSelective(_ t: TOMLTable, into c: inout GreylagConfiguration) {
        var rejectCode: String? = nil, rejectText: String? = nil
        for (key, value) in t {
            let k = "selective.\(key)"
            guard known("selective", key) else { continue }
            switch key {
            case "enabled":
                if let v = boolean(k, value) { c.dns.selective = v }
            case "greylist_threshold":
                if let v = integer(k, value, in: Self.thresholdRange) { c.dns.greylistThreshold = v }
            case "allow_threshold":
                if let v = integer(k, value, in: Self.thresholdRange) { c.dns.allowThreshold = v }
            case "reject_threshold":
                if let v = integer(k, value, in: Self.thresholdRange) { c.dns.rejectThreshold = v }
            case "reject_code":
                if let v = string(k, value) {
                    if Self.isAction(v, allowed: [], codeClass: "5") { rejectCode = v } else {
                        fail(k, "\"\(v.logEscaped)\" is not a 5xx code with an optional enhanced code, such as \"554 5.7.1\"")
                    }
                }
            case "reject_text":
                if let v = text(k, value) { rejectText = v }
            case "suspect_unconfirmed_reverse":
                if let v = boolean(k, value) { c.dns.suspectUnconfirmedReverse = v }
            case "suspect_dynamic_names":
                if let v = boolean(k, value) { c.dns.suspectDynamicNames = v }
            case "dynamic_names_file":
                guard let path = string(k, value) else { continue }
                guard !path.isEmpty else {
                    fail(k, "must not be empty")
                    continue
                }
                let full = path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
                c.dynamicNamesFile = full
                guard access(full, R_OK) == 0 else {
                    fail(k, "cannot read \(full): \(String(cString: strerror(errno)))")
                    continue
                }
                guard let data = FileManager.default.contents(atPath: full) else {
                    fail(k, "cannot read \(full)")
                    continue
                }
                guard data.count <= Self.maxDynamicNamesFile else {
                    fail(k, "\(full) is larger than 1 MiB")
                    continue
                }
                do {
                    c.dnsChecks.dynamicNames = try DynamicNames.parse(String(decoding: data, as: UTF8.self), origin: full)
                } catch {
                    fail(k, "\(full): \(error)")
                }
            default:
                unread(k)
            }
        }
        c.dnsChecks.rejectReply = RuleReply.make(deferCode: nil, deferText: nil, rejectCode: rejectCode,
                                                 rejectText: rejectText)
    }

    /// The relations between the DNS settings, once every table is read.
    mutating func checkDNS(_ root: TOMLTable, into c: inout GreylagConfiguration) {
        let d = c.dns
        if d.selective && d.allowThreshold >= d.greylistThreshold {
            fail("selective.allow_threshold", "\(d.allowThreshold) must be below greylist_threshold (\(d.greylistThreshold))")
        }
        if let r = d.rejectThreshold {
            if r <= d.allowThreshold {
                fail("selective.reject_threshold", "\(r) must be above allow_threshold (\(d.allowThreshold))")
            } else if d.selective && r < d.greylistThreshold {
                fail("selective.reject_threshold", "\(r) must not be below greylist_threshold (\(d.greylistThreshold))")
            }
        }
        let uses = d.isActive || !c.dnsChecks.lists.isEmpty
        // The policy and milter decision timeout is the store timeout: the
        // DNS checks must leave the store at least half of it.
        if uses && c.dnsChecks.deadline * 2 > c.storeTimeout {
            let key = root["greylist"]?.table?["dns_deadline"] != nil ? "greylist.dns_deadline" : "store.timeout"
            fail(key, "the DNS deadline (\(Self.number(c.dnsChecks.deadline)) s) must be at most half of store.timeout "
                 + "(\(Self.number(c.storeTimeout)) s), which bounds every decision")
        }
    }
}
