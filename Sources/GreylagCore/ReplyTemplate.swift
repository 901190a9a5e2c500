import Synchronization

/// Expands the placeholders of configurable reply and header texts.
///
/// | placeholder | value |
/// |---|---|
/// | `{seconds}` | seconds until a retry passes |
/// | `{left}` | the same as `4m52s` |
/// | `{hms}` | the same as `00:04:52` |
/// | `{delayed}` | seconds the sender was delayed (first pass) |
/// | `{client}` | client address |
/// | `{network}` | client network of the triplet |
/// | `{sender}`, `{recipient}` | envelope addresses as received |
///
/// Unknown placeholders are left as written.
public enum ReplyTemplate {
    /// A template cut into literal text and placeholders, once.
    enum Piece: Sendable {
        case text(String)
        case seconds, left, hms, delayed, client, network, sender, recipient
    }

    /// The last templates cut, by their text: a reply is expanded for every
    /// deferral, always from the same few configured texts.
    private static let cache = Mutex<[(template: String, pieces: [Piece])]>([])

    public static func expand(_ template: String, verdict: Verdict, query: GreylistQuery) -> String {
        guard template.utf8.contains(UInt8(ascii: "{")) else { return template }
        var out = ""
        out.reserveCapacity(template.utf8.count + 32)
        expand(template, verdict: verdict, query: query, into: &out)
        return out
    }

    /// `expand`, appended to `out`: a reply made of a code and this text
    /// is then one string from the start.
    public static func expand(_ template: String, verdict: Verdict, query: GreylistQuery, into out: inout String) {
        guard template.utf8.contains(UInt8(ascii: "{")) else {
            out += template
            return
        }
        for piece in cut(template) {
            switch piece {
            case .text(let t): out += t
            case .seconds: out += String(verdict.timeLeft ?? 0)
            case .left: out += DurationText.format(verdict.timeLeft ?? 0)
            case .hms: out += DurationText.clock(verdict.timeLeft ?? 0)
            case .delayed: out += String(verdict.delayed ?? 0)
            case .client: out += query.clientAddress
            case .network: out += verdict.triplet?.network ?? ""
            case .sender: out += query.sender.isEmpty ? "<>" : query.sender
            case .recipient: out += query.recipient
            }
        }
    }

    /// The names `expand` knows, for configuration checks.
    public static let placeholders: Set<String> = ["seconds", "left", "hms", "delayed", "client", "network",
                                                   "sender", "recipient"]

    /// `template` as pieces, from the cache when it was cut before.
    static func cut(_ template: String) -> [Piece] {
        if let hit = cache.withLock({ $0.first { $0.template == template }?.pieces }) { return hit }
        var pieces: [Piece] = []
        var rest = Substring(template)
        var literal = ""
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            literal += rest[..<open]
            if let p = piece(named: rest[rest.index(after: open)..<close]) {
                if !literal.isEmpty { pieces.append(.text(literal)) }
                literal = ""
                pieces.append(p)
            } else {
                literal += rest[open...close]  // unknown placeholders are left as written
            }
            rest = rest[rest.index(after: close)...]
        }
        literal += rest
        if !literal.isEmpty { pieces.append(.text(literal)) }
        cache.withLock { c in
            if c.count >= 16 { c.removeFirst() }
            c.append((template, pieces))
        }
        return pieces
    }

    static func piece(named name: Substring) -> Piece? {
        switch name {
        case "seconds": return .seconds
        case "left": return .left
        case "hms": return .hms
        case "delayed": return .delayed
        case "client": return .client
        case "network": return .network
        case "sender": return .sender
        case "recipient": return .recipient
        default: return nil
        }
    }
}
