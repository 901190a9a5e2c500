import GreylagCore
import TOMLKit

/// A `[[rules]]` entry as read, before named lists are resolved.
struct PendingRule {
    /// `rules[N]`, 1-based, the prefix of the rule's keys in errors.
    var name: String
    var origin: String
    /// One spec per selector key, in the order read.
    var selectors: [(key: String, spec: RuleSections.Spec)] = []
    var action: GreylistRule.Action = .greylist
    var delay: Int64?
    var retryWindow: Int64?
    var passTTL: Int64?
    var deferCode: String?
    var deferText: String?
    var rejectCode: String?
    var rejectText: String?
}

/// `[[rules]]`: rules with their own action, timings and replies, checked
/// in file order after the exemptions; the first that matches decides.
///
/// ```toml
/// [[rules]]
/// sender_domains = ["example.com"]   # selectors: clients, client_names, helo_names, senders,
/// recipients = ["list@example.net"]  #   sender_domains, recipients, recipient_domains, lists,
///                                    #   files, client_files, recipient_files; all given must match
/// action = "greylist"                # or "whitelist", "blacklist"
/// delay = "1h"                       # greylist only; unset timings follow [greylist]
/// retry_window = "2d"
/// pass_ttl = "7d"
/// defer_code = "451 4.7.1"           # greylist only; default: the protocol's own
/// defer_text = "Come back in {left}"
/// reject_code = "550 5.7.1"          # blacklist only
/// reject_text = "No mail from you"
/// ```
extension Reader {
    static let ruleKeys = ["action", "delay", "retry_window", "pass_ttl", "defer_code", "defer_text", "reject_code",
                           "reject_text"]
    static let ruleSelectorKeys = SelectorField.allCases.map(\.configKey) + ["lists", "files", "client_files",
                                                                             "recipient_files"]

    mutating func readRules(_ value: any TOMLValueConvertible) {
        guard let array = value.array else {
            fail("rules", "expected [[rules]] entries (an array of tables), found \(value.type)")
            return
        }
        for (i, item) in array.enumerated() {
            let name = "rules[\(i + 1)]"
            guard let table = item.table else {
                fail(name, "expected a table of selectors and settings, found \(item.type)")
                continue
            }
            readRule(table, name: name)
        }
    }

    mutating func readRule(_ t: TOMLTable, name: String) {
        let line = locator.line(of: name).map(String.init) ?? "?"
        var rule = PendingRule(name: name, origin: "\(file):\(line) \(name)")
        var set: [String: String] = [:]  // settings given, for the action checks
        for (key, value) in t {
            let k = "\(name).\(key)"
            switch key {
            case "action":
                if let v = string(k, value) {
                    if let a = GreylistRule.Action(rawValue: v.lowercased()) { rule.action = a } else {
                        fail(k, "\"\(v)\" is not \"greylist\", \"whitelist\" or \"blacklist\"")
                    }
                }
            case "delay":
                set[key] = k
                rule.delay = duration(k, value, unit: 1)
            case "retry_window":
                set[key] = k
                if let v = duration(k, value, unit: 1) {
                    if v > 0 { rule.retryWindow = v } else { fail(k, "must be more than 0") }
                }
            case "pass_ttl":
                set[key] = k
                if let v = duration(k, value, unit: 1) {
                    if v > 0 { rule.passTTL = v } else { fail(k, "must be more than 0") }
                }
            case "defer_code":
                set[key] = k
                if let v = string(k, value) {
                    if Self.isAction(v, allowed: [], codeClass: "4") { rule.deferCode = v } else {
                        fail(k, "\"\(v)\" is not a 4xx code with an optional enhanced code, such as \"451 4.7.1\"")
                    }
                }
            case "defer_text":
                set[key] = k
                rule.deferText = text(k, value)
            case "reject_code":
                set[key] = k
                if let v = string(k, value) {
                    if Self.isAction(v, allowed: [], codeClass: "5") { rule.rejectCode = v } else {
                        fail(k, "\"\(v)\" is not a 5xx code with an optional enhanced code, such as \"550 5.7.1\"")
                    }
                }
            case "reject_text":
                set[key] = k
                rule.rejectText = text(k, value)
            case "lists":
                var spec = RuleSections.Spec()
                if let names = strings(k, value) {
                    if names.isEmpty { fail(k, "is empty; a selector without values never matches") }
                    spec.lists = names.map { ($0, k) }
                }
                rule.selectors.append((k, spec))
            default:
                guard Self.ruleSelectorKeys.contains(key) else {
                    fail(k, "unknown key; expected a selector (" + Self.ruleSelectorKeys.joined(separator: ", ")
                         + ") or " + Self.ruleKeys.joined(separator: ", "))
                    continue
                }
                var spec = RuleSections.Spec()
                if SelectorField(configKey: key) != nil, let items = value.array, items.isEmpty {
                    fail(k, "is empty; a selector without values never matches")
                }
                readRuleKey(key, value, section: name, into: &spec)
                rule.selectors.append((k, spec))
            }
        }
        if rule.selectors.isEmpty {
            fail(name, "has no selector; give at least one of " + Self.ruleSelectorKeys.joined(separator: ", ")
                 + " (a rule for everyone is what [greylist] is for)")
        }
        let allowed: Set<String>
        switch rule.action {
        case .greylist: allowed = ["delay", "retry_window", "pass_ttl", "defer_code", "defer_text"]
        case .blacklist: allowed = ["reject_code", "reject_text"]
        case .whitelist: allowed = []
        }
        for (key, k) in set.sorted(by: { $0.key < $1.key }) where !allowed.contains(key) {
            fail(k, "does not apply to a \(rule.action.rawValue) rule"
                 + (allowed.isEmpty ? "" : "; it takes " + allowed.sorted().joined(separator: ", ")))
        }
        ruleSections.rules.append(rule)
    }

    /// Resolves the rules' named lists and compiles them; checks each
    /// greylist rule's retry window against its delay, either of which
    /// may come from `[greylist]`.
    mutating func resolveRules(into c: inout GreylagConfiguration) {
        var out: [GreylistRule] = []
        for p in ruleSections.rules {
            var selectors: [RuleSet] = []
            for (_, spec) in p.selectors {
                var rules = spec.rules
                for (name, key) in spec.lists {
                    if let named = ruleSections.named[name] { rules += named.rules } else {
                        let known = ruleSections.named.keys.sorted()
                        fail(key, item: name, "no list named \"\(name)\""
                             + (known.isEmpty ? "; define it as [lists.\(name)]" : "; defined: " + known.joined(separator: ", ")))
                    }
                }
                selectors.append(RuleSet(rules))
            }
            if p.action == .greylist {
                let delay = p.delay ?? c.policy.delay
                let window = p.retryWindow ?? c.policy.retryWindow
                if (p.delay != nil || p.retryWindow != nil) && window <= delay {
                    fail(p.retryWindow != nil ? "\(p.name).retry_window" : "\(p.name).delay",
                         "the retry window (\(DurationText.format(window))) must be longer than the delay "
                         + "(\(DurationText.format(delay)))")
                }
            }
            out.append(GreylistRule(action: p.action, selectors: selectors, delay: p.delay, retryWindow: p.retryWindow,
                                    passTTL: p.passTTL,
                                    reply: RuleReply.make(deferCode: p.deferCode, deferText: p.deferText,
                                                          rejectCode: p.rejectCode, rejectText: p.rejectText),
                                    origin: p.origin))
        }
        c.lists.rules = out
    }
}
