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
    public static func expand(_ template: String, verdict: Verdict, query: GreylistQuery) -> String {
        guard template.contains("{") else { return template }
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            out += rest[..<open]
            let name = rest[rest.index(after: open)..<close]
            if let value = value(of: name, verdict: verdict, query: query) {
                out += value
            } else {
                out += rest[open...close]
            }
            rest = rest[rest.index(after: close)...]
        }
        out += rest
        return out
    }

    /// The names `expand` knows, for configuration checks.
    public static let placeholders: Set<String> = ["seconds", "left", "hms", "delayed", "client", "network",
                                                   "sender", "recipient"]

    static func value(of name: Substring, verdict: Verdict, query: GreylistQuery) -> String? {
        switch name {
        case "seconds": return String(verdict.timeLeft ?? 0)
        case "left": return DurationText.format(verdict.timeLeft ?? 0)
        case "hms": return DurationText.clock(verdict.timeLeft ?? 0)
        case "delayed": return String(verdict.delayed ?? 0)
        case "client": return query.clientAddress
        case "network": return verdict.triplet?.network ?? ""
        case "sender": return query.sender.isEmpty ? "<>" : query.sender
        case "recipient": return query.recipient
        default: return nil
        }
    }
}
