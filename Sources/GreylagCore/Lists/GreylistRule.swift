/// One `[[rules]]` entry: selectors that must all match, and what to do
/// then. Rules are checked in order after the exemptions and before the
/// black- and whitelist tables; the first that matches decides, as
/// milter-greylist's ACLs do.
///
/// - `whitelist`: pass.
/// - `blacklist`: refuse, with the rule's reply code and text if set.
/// - `greylist`: greylist with the rule's timings and reply texts; the
///   whitelist tables are skipped, the blacklist tables, scope, dry run
///   and the client auto-whitelist still apply.
public struct GreylistRule: Sendable {
    public enum Action: String, Sendable, Hashable, CaseIterable {
        case greylist, whitelist, blacklist
    }

    public var action: Action
    /// One set per selector key given; each must have a matching entry
    /// (AND), any entry of a set will do (OR).
    public var selectors: [RuleSet]
    /// Timings for a greylist rule; nil falls back to `[greylist]`.
    public var delay: Int64?
    public var retryWindow: Int64?
    public var passTTL: Int64?
    /// Reply code and texts; nil when the rule sets none.
    public var reply: RuleReply?
    /// Where it was written: `greylag.toml:14 rules[2]`.
    public var origin: String

    public init(action: Action = .greylist, selectors: [RuleSet], delay: Int64? = nil, retryWindow: Int64? = nil,
                passTTL: Int64? = nil, reply: RuleReply? = nil, origin: String) {
        self.action = action
        self.selectors = selectors
        self.delay = delay
        self.retryWindow = retryWindow
        self.passTTL = passTTL
        self.reply = reply
        self.origin = origin
    }

    /// The parts of a query the rule looks at.
    var fields: SelectorFields { selectors.reduce([]) { $0.union($1.fields) } }

    /// What a decision reports when every selector matches at `now`: the
    /// rule's origin and the entries that matched; nil otherwise.
    public func match(_ s: MatchSubject, now: Int64) -> RuleMatch? {
        guard !selectors.isEmpty else { return nil }
        var first: ListRule? = nil
        var texts: [String] = []
        for set in selectors {
            guard let r = set.firstMatch(s, now: now) else { return nil }
            if first == nil { first = r }
            texts.append(r.text)
        }
        guard let first else { return nil }
        return RuleMatch(field: first.field, text: texts.joined(separator: ", "), origin: origin)
    }
}

/// A rule's own reply code and texts, used instead of the protocol's
/// configured ones where set. Codes are SMTP codes with an optional
/// enhanced code (`451 4.7.1`); texts have `ReplyTemplate` placeholders.
public final class RuleReply: Sendable, Hashable, CustomStringConvertible {
    public let deferCode: String?
    public let deferText: String?
    public let rejectCode: String?
    public let rejectText: String?

    public init(deferCode: String? = nil, deferText: String? = nil, rejectCode: String? = nil, rejectText: String? = nil) {
        self.deferCode = deferCode
        self.deferText = deferText
        self.rejectCode = rejectCode
        self.rejectText = rejectText
    }

    /// Nil when nothing is set, so verdicts carry no empty reply.
    public static func make(deferCode: String?, deferText: String?, rejectCode: String?, rejectText: String?) -> RuleReply? {
        if deferCode == nil && deferText == nil && rejectCode == nil && rejectText == nil { return nil }
        return RuleReply(deferCode: deferCode, deferText: deferText, rejectCode: rejectCode, rejectText: rejectText)
    }

    public static func == (a: RuleReply, b: RuleReply) -> Bool {
        a.deferCode == b.deferCode && a.deferText == b.deferText && a.rejectCode == b.rejectCode
            && a.rejectText == b.rejectText
    }

    public func hash(into h: inout Hasher) {
        h.combine(deferCode)
        h.combine(deferText)
        h.combine(rejectCode)
        h.combine(rejectText)
    }

    public var description: String {
        [("defer_code", deferCode), ("defer_text", deferText), ("reject_code", rejectCode), ("reject_text", rejectText)]
            .compactMap { k, v in v.map { "\(k)=\"\($0)\"" } }.joined(separator: " ")
    }
}
