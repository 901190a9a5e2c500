/// A compiled list of rules (a whitelist, a blacklist, a scope list),
/// indexed so that a query costs a few hash lookups however long the list:
/// networks by prefix length, names and domains by each of their suffixes,
/// addresses by whole address and local part. Regular expressions are tried
/// last, one by one, behind their literal-suffix prefilter.
///
/// When several rules match, the first in field order (client, client name,
/// HELO, sender, sender domain, recipient, recipient domain) is reported,
/// and within a field the most specific one.
public struct RuleSet: Sendable {
    private var networks = NetworkTable()
    private var names: [NameTable] = Array(repeating: NameTable(), count: SelectorField.allCases.count)
    private var addresses: [AddressTable] = Array(repeating: AddressTable(), count: SelectorField.allCases.count)
    /// Every rule, in the order added.
    public private(set) var rules: [ListRule] = []
    /// The parts of a query the rules look at.
    public private(set) var fields: SelectorFields = []

    public init(_ rules: [ListRule] = []) {
        for r in rules { add(r) }
    }

    public var isEmpty: Bool { rules.isEmpty }
    public var count: Int { rules.count }

    public mutating func add(_ rule: ListRule) {
        rules.append(rule)
        fields.insert(SelectorFields(rule.field))
        switch rule.pattern {
        case .network(let n): networks.add(n, rule)
        case .name(let p): names[rule.field.index].add(p, rule)
        case .address(let p): addresses[rule.field.index].add(p, rule)
        }
    }

    /// The first rule in force at `now` that matches, or nil.
    public func firstMatch(_ s: MatchSubject, now: Int64) -> ListRule? {
        if rules.isEmpty { return nil }
        // Only the tables that hold rules are looked at: a set of one
        // field (most `[[rules]]` selectors) costs one lookup.
        if fields.contains(.client), let a = s.address, let r = networks.match(a, now: now) { return r }
        if fields.contains(.clientName), let r = names[SelectorField.clientName.index].match(s.clientName, now: now) { return r }
        if fields.contains(.helo), let r = names[SelectorField.helo.index].match(s.helo, now: now) { return r }
        if fields.contains(.sender) {
            if let r = addresses[SelectorField.sender.index].match(s.sender, now: now) { return r }
            if let r = names[SelectorField.senderDomain.index].match(s.sender.domain, now: now) { return r }
        }
        if fields.contains(.recipient) {
            if let r = addresses[SelectorField.recipient.index].match(s.recipient, now: now) { return r }
            if let r = names[SelectorField.recipientDomain.index].match(s.recipient.domain, now: now) { return r }
        }
        return nil
    }
}

extension SelectorField {
    var index: Int {
        switch self {
        case .client: return 0
        case .clientName: return 1
        case .helo: return 2
        case .sender: return 3
        case .senderDomain: return 4
        case .recipient: return 5
        case .recipientDomain: return 6
        }
    }
}

/// The first live rule of a bucket.
@inline(__always) private func live(_ bucket: [ListRule]?, _ now: Int64) -> ListRule? {
    guard let bucket else { return nil }
    return bucket.first { $0.live(at: now) }
}

/// Networks keyed by their masked address, one dictionary per prefix
/// length, longest prefix tried first.
private struct NetworkTable: Sendable {
    var byPrefix: [Int: [IPAddress: [ListRule]]] = [:]
    var v4Prefixes: [Int] = []
    var v6Prefixes: [Int] = []

    mutating func add(_ n: IPNetwork, _ rule: ListRule) {
        byPrefix[n.prefix + (n.address.isIPv4 ? 0 : 1000), default: [:]][n.address, default: []].append(rule)
        if n.address.isIPv4 {
            if !v4Prefixes.contains(n.prefix) { v4Prefixes.append(n.prefix); v4Prefixes.sort(by: >) }
        } else if !v6Prefixes.contains(n.prefix) {
            v6Prefixes.append(n.prefix); v6Prefixes.sort(by: >)
        }
    }

    func match(_ a: IPAddress, now: Int64) -> ListRule? {
        let v4 = a.isIPv4
        for p in v4 ? v4Prefixes : v6Prefixes {
            if let r = live(byPrefix[p + (v4 ? 0 : 1000)]?[a.masked(to: p)], now) { return r }
        }
        return nil
    }
}

/// Names: exact, domain-and-below and below-only entries in dictionaries,
/// looked up for the name and each parent of it; regexes after.
private struct NameTable: Sendable {
    // Substring keys: parents of a name are looked up without copying them.
    var exact: [Substring: [ListRule]] = [:]
    var domain: [Substring: [ListRule]] = [:]
    var below: [Substring: [ListRule]] = [:]
    // Parallel arrays: the loop touches only the patterns.
    var regexes: [RegexPattern] = []
    var regexRules: [ListRule] = []
    var isEmpty = true

    mutating func add(_ p: NamePattern, _ rule: ListRule) {
        isEmpty = false
        switch p {
        case .exact(let n): exact[Substring(n), default: []].append(rule)
        case .domain(let d): domain[Substring(d), default: []].append(rule)
        case .subdomains(let d): below[Substring(d), default: []].append(rule)
        case .regex(let r):
            regexes.append(r)
            regexRules.append(rule)
        }
    }

    func match(_ name: String, now: Int64) -> ListRule? {
        if isEmpty || name.isEmpty { return nil }
        let whole = Substring(name)
        if let r = live(exact[whole], now) ?? live(domain[whole], now) { return r }
        if !domain.isEmpty || !below.isEmpty {
            let u = name.utf8
            var i = u.startIndex
            while let dot = u[i...].firstIndex(of: UInt8(ascii: ".")) {
                i = u.index(after: dot)
                let parent = name[i...]
                if let r = live(domain[parent], now) ?? live(below[parent], now) { return r }
            }
        }
        for i in regexes.indices where regexes[i].matches(name) && regexRules[i].live(at: now) { return regexRules[i] }
        return nil
    }
}

/// Envelope addresses: whole addresses, local parts at any domain, domain
/// patterns, the null sender and regexes on the whole address.
private struct AddressTable: Sendable {
    var whole: [String: [ListRule]] = [:]
    var locals: [String: [ListRule]] = [:]
    var domains = NameTable()
    var regexes: [RegexPattern] = []
    var regexRules: [ListRule] = []
    var nullSender: [ListRule] = []
    var isEmpty = true

    mutating func add(_ p: AddressPattern, _ rule: ListRule) {
        isEmpty = false
        switch p {
        case .address(let l, let d): whole["\(l)@\(d)", default: []].append(rule)
        case .localPart(let l): locals[l, default: []].append(rule)
        case .domain(let n): domains.add(n, rule)
        case .regex(let r):
            regexes.append(r)
            regexRules.append(rule)
        case .nullSender: nullSender.append(rule)
        }
    }

    func match(_ a: MatchAddress, now: Int64) -> ListRule? {
        if isEmpty { return nil }
        if a.full.isEmpty { return live(nullSender, now) }
        if !whole.isEmpty {
            if let r = live(whole[a.local + "@" + a.domain], now) { return r }
            if a.baseLocal != a.local, let r = live(whole[a.baseLocal + "@" + a.domain], now) { return r }
        }
        if !locals.isEmpty {
            if let r = live(locals[a.local], now) { return r }
            if a.baseLocal != a.local, let r = live(locals[a.baseLocal], now) { return r }
        }
        if let r = domains.match(a.domain, now: now) { return r }
        for i in regexes.indices where regexes[i].matches(a.full) && regexRules[i].live(at: now) { return regexRules[i] }
        return nil
    }
}
