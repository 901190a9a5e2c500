import QmailGate

/// The OpenSMTPD filter's logic without any I/O: it takes smtpd's lines
/// and the daemon's answers, and returns what to write, whom to ask and
/// what to log. Many sessions interleave; each session's requests are
/// answered in the order they came, one question to the daemon at a time
/// per session, while other sessions go on.
///
/// It never produces a line smtpd could not parse: sessions and tokens are
/// echoed only after they were checked as hex, reply texts are cut to
/// printable ASCII, and every request is answered (`proceed` when greylag
/// cannot decide).
public struct FilterStateMachine: Sendable {
    public struct Settings: Sendable, Hashable {
        /// Register `data-line` and add the daemon's `X-Greylist` header.
        public var header = false
        /// Sessions remembered at once; past that the oldest idle one is forgotten.
        public var maxSessions = 8192
        public init() {}
    }

    /// One question to the daemon.
    public struct Question: Sendable, Hashable {
        public var ticket: UInt64
        public var attributes: [Attribute]
    }

    /// A policy attribute (`name=value`).
    public struct Attribute: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// What a log line is about, for rate limiting.
    public enum LogKind: Sendable, Hashable {
        /// The daemon could not be asked.
        case daemon
        /// smtpd sent something this filter does not take.
        case input
        /// Start-up and other single events.
        case notice
    }

    public enum Action: Sendable, Hashable {
        /// Write this line (without its LF) to smtpd.
        case write([UInt8])
        /// Ask the daemon; call `answerReceived` with the ticket.
        case ask(Question)
        /// Say this on standard error.
        case log(LogKind, String)
    }

    public let settings: Settings
    private var configured = false
    private var registered = false
    private var sessions: [ArraySlice<UInt8>: Session] = [:]
    private var ticketSessions: [UInt64: ArraySlice<UInt8>] = [:]
    private var nextTicket: UInt64 = 1
    private var connectCounter: UInt64 = 0
    private var versionsWarned: Set<FilterProtocolVersion> = []
    /// What smtpd said in the handshake (`smtpd-version`, `protocol`, ...).
    public private(set) var config: [String: String] = [:]

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    /// Sessions remembered now.
    public var sessionCount: Int { sessions.count }

    /// The registration lines, written once after `config|ready`.
    public var registration: [String] {
        var lines = ["link-connect", "link-disconnect", "link-identify", "link-auth", "tx-begin", "tx-mail", "tx-reset"]
            .map { "register|report|smtp-in|\($0)" }
        lines.append("register|filter|smtp-in|rcpt-to")
        if settings.header { lines.append("register|filter|smtp-in|data-line") }
        lines.append("register|ready")
        return lines
    }

    // MARK: input

    /// One line from smtpd arrived (without its LF).
    public mutating func lineReceived(_ line: [UInt8]) -> [Action] {
        let kind = FilterFields(line, limit: 2)
        if kind.equals(0, "filter") { return filterReceived(line) }
        if kind.equals(0, "report") { return reportReceived(line) }
        if kind.equals(0, "config") { return configReceived(line) }
        return [.log(.input, "ignored a line that is no filter, report or config line: \(Self.excerpt(line))")]
    }

    private mutating func configReceived(_ line: [UInt8]) -> [Action] {
        let f = FilterFields(line, limit: 3)
        if f.count == 2 && f.equals(1, "ready") {
            guard !registered else { return [] }
            registered = true
            configured = true
            let version = config["smtpd-version"].map { "smtpd \($0)" } ?? "smtpd"
            return registration.map { .write(Array($0.utf8)) }
                + [.log(.notice, "registered with \(version)" + (settings.header ? " (X-Greylist header on)" : ""))]
        }
        guard f.count == 3 else { return [.log(.input, "ignored a config line without a value: \(Self.excerpt(line))")] }
        if config.count < 64 { config[String(f.string(1).prefix(64))] = String(f.string(2).prefix(256)) }
        return []
    }

    private mutating func versionNote(_ v: FilterProtocolVersion) -> [Action] {
        guard !v.isKnown, versionsWarned.count < 8, versionsWarned.insert(v).inserted else { return [] }
        return [.log(.notice, "protocol version \(v) is not one this filter knows (0.4 to 0.7); "
                     + "reading it as \(v.effective)")]
    }

    // MARK: reports

    private mutating func reportReceived(_ line: [UInt8]) -> [Action] {
        // report|VERSION|TIME|SUBSYSTEM|EVENT|SESSION|PARAMS
        let f = FilterFields(line, limit: 7)
        guard f.count >= 6, let version = FilterProtocolVersion(bytes: f[1]), f[5].isFilterIdentifier else {
            return [.log(.input, "ignored a malformed report line: \(Self.excerpt(line))")]
        }
        guard f.equals(3, "smtp-in") else { return [] }
        var actions = versionNote(version)
        let id = f[5]
        let params: ArraySlice<UInt8> = f.count > 6 ? f[6] : []
        let event = f.string(4)
        switch event {
        case "link-connect":
            actions += connected(id, params)
        case "link-disconnect":
            if let s = sessions.removeValue(forKey: id), let t = s.waiting { ticketSessions[t] = nil }
        case "link-identify":
            guard sessions[id] != nil else { break }
            let (method, helo) = params.splitFirstBar()
            sessions[id]?.helo = helo.map { String(decoding: $0, as: UTF8.self) } ?? ""
            sessions[id]?.esmtp = method.elementsEqual("EHLO".utf8)
        case "link-auth":
            guard sessions[id] != nil else { break }
            let result: ArraySlice<UInt8>, user: ArraySlice<UInt8>
            if version.authResultFirst {
                let (r, u) = params.splitFirstBar()
                (result, user) = (r, u ?? [])
            } else {
                let (u, r) = params.splitLastBar()
                (result, user) = (r, u ?? [])
            }
            if result.elementsEqual("pass".utf8) { sessions[id]?.user = String(decoding: user, as: UTF8.self) }
        case "tx-begin":
            guard sessions[id] != nil else { break }
            sessions[id]?.newTransaction(msgid: String(decoding: params.prefix(16), as: UTF8.self))
        case "tx-mail":
            guard sessions[id] != nil else { break }
            let (msgid, rest) = params.splitFirstBar()
            guard let rest else { return actions + [.log(.input, "ignored a tx-mail report without fields: \(Self.excerpt(line))")] }
            let result: ArraySlice<UInt8>, address: ArraySlice<UInt8>
            if version.mailResultFirst {
                let (r, a) = rest.splitFirstBar()
                (result, address) = (r, a ?? [])
            } else {
                let (a, r) = rest.splitLastBar()
                (result, address) = (r, a ?? [])
            }
            sessions[id]?.msgid = String(decoding: msgid.prefix(16), as: UTF8.self)
            sessions[id]?.header = nil
            sessions[id]?.sender = result.elementsEqual("ok".utf8) ? String(decoding: address, as: UTF8.self) : nil
        case "tx-reset":
            sessions[id]?.endTransaction()
        default:
            break
        }
        return actions
    }

    private mutating func connected(_ id: ArraySlice<UInt8>, _ params: ArraySlice<UInt8>) -> [Action] {
        // rdns|fcrdns|src|dest; the reverse name comes from DNS, so read from the right.
        let (left, dest) = params.splitLastBar()
        guard let left, !dest.isEmpty else {
            return [.log(.input, "ignored a link-connect report without its fields: \(Self.excerpt(Array(params)))")]
        }
        let (left2, src) = left.splitLastBar()
        let (rdnsPart, fcrdns) = left2.map { $0.splitLastBar() } ?? (nil, [])
        var actions: [Action] = []
        if sessions[id] == nil && sessions.count >= settings.maxSessions {
            // Forget the oldest session that waits for nothing; with none, this one goes untracked.
            if let oldest = sessions.filter({ $0.value.idle }).min(by: { $0.value.serial < $1.value.serial })?.key {
                sessions[oldest] = nil
                actions.append(.log(.input, "more than \(settings.maxSessions) sessions open: forgot the oldest"))
            } else {
                return [.log(.input, "more than \(settings.maxSessions) sessions waiting: session "
                         + "\(String(decoding: id, as: UTF8.self)) passes without greylisting")]
            }
        }
        connectCounter += 1
        let rdns = rdnsPart.map { String(decoding: $0, as: UTF8.self) } ?? ""
        sessions[id] = Session(serial: connectCounter, client: Self.client(src), rdns: rdns,
                               fcrdns: fcrdns.elementsEqual("pass".utf8))
        return actions
    }

    /// The client's address in `a.b.c.d:port`, `[v6]:port` or `unix:/path`.
    static func client(_ src: ArraySlice<UInt8>) -> Client {
        let text = String(decoding: src, as: UTF8.self)
        if text.hasPrefix("unix:") || text == "local" { return .local }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return .unknown(text) }
            var address = String(text[text.index(after: text.startIndex)..<close])
            if let percent = address.firstIndex(of: "%") { address = String(address[..<percent]) }
            if address.lowercased().hasPrefix("::ffff:"), address.contains(".") { address = String(address.dropFirst(7)) }
            return address.isEmpty ? .unknown(text) : .address(address)
        }
        guard let colon = text.lastIndex(of: ":"), text.filter({ $0 == ":" }).count == 1 else { return .unknown(text) }
        let address = String(text[..<colon])
        let isIPv4 = !address.isEmpty && address.allSatisfy { $0 == "." || ($0 >= "0" && $0 <= "9") }
        return isIPv4 ? .address(address) : .unknown(text)
    }

    // MARK: requests

    private mutating func filterReceived(_ line: [UInt8]) -> [Action] {
        // filter|VERSION|TIME|SUBSYSTEM|PHASE|SESSION|TOKEN|PARAM
        let f = FilterFields(line, limit: 8)
        guard f.count >= 7, let version = FilterProtocolVersion(bytes: f[1]),
              f[5].isFilterIdentifier, f[6].isFilterIdentifier else {
            // Without a session and token that can be echoed there is no answer smtpd would take.
            return [.log(.input, "ignored a malformed filter request: \(Self.excerpt(line))")]
        }
        var actions = versionNote(version)
        let id = f[5]
        let request = Pending(version: version, session: id, token: f[6], phase: f.string(4),
                              parameter: f.count > 7 ? f[7] : [])
        guard sessions[id] != nil else {
            if request.phase == "rcpt-to" {
                actions.append(.log(.input, "rcpt-to for session \(String(decoding: id, as: UTF8.self)) without a "
                                    + "link-connect report: passing it"))
            }
            return actions + [.write(request.immediateReply(header: nil))]
        }
        sessions[id]?.queue.append(request)
        return actions + pump(id)
    }

    /// Answers what can be answered at the head of a session's queue, up to
    /// the next question to the daemon.
    private mutating func pump(_ id: ArraySlice<UInt8>) -> [Action] {
        var actions: [Action] = []
        while var s = sessions[id], s.waiting == nil, let head = s.queue.first {
            if head.phase == "rcpt-to" {
                switch s.question(recipient: Self.recipient(head.parameter)) {
                case .ask(let attributes):
                    let ticket = nextTicket
                    nextTicket &+= 1
                    s.waiting = ticket
                    sessions[id] = s
                    ticketSessions[ticket] = id
                    actions.append(.ask(Question(ticket: ticket, attributes: attributes)))
                    return actions
                case .pass:
                    break
                }
            }
            s.queue.removeFirst()
            var header: [UInt8]? = nil
            if head.phase == "data-line" {
                if !s.inData {
                    s.inData = true
                    header = s.header
                    s.header = nil
                }
                if head.parameter.elementsEqual(".".utf8) { s.inData = false }
            }
            sessions[id] = s
            actions.append(.write(head.immediateReply(header: header)))
            if let h = header { actions.insert(.write(head.dataLine(h)), at: actions.count - 1) }
        }
        return actions
    }

    /// The daemon answered (`action` is its `action=` value) or could not
    /// be asked (`failure` says why).
    public mutating func answerReceived(ticket: UInt64, action: String?, failure: String? = nil) -> [Action] {
        guard let id = ticketSessions.removeValue(forKey: ticket), var s = sessions[id], s.waiting == ticket,
              let head = s.queue.first else { return [] }  // the session ended meanwhile: smtpd takes no answer
        s.queue.removeFirst()
        s.waiting = nil
        var actions: [Action] = []
        let reply: [UInt8]
        if let action {
            let upper = action.uppercased()
            if upper.hasPrefix("PREPEND ") {
                if s.header == nil { s.header = Array(Self.printable(String(action.dropFirst(8)), limit: 900).utf8) }
                reply = head.result("proceed")
            } else {
                switch GateVerdict(action: action) {
                case .pass: reply = head.result("proceed")
                case .defer(let text):
                    let t = Self.printable(text, limit: 400)
                    reply = head.result("reject|\(Self.deferCode(action)) " + (t.isEmpty ? "Greylisted, please try again later" : t))
                case .reject(let text):
                    let t = Self.printable(text, limit: 400)
                    let enhanced = GateVerdict.code(of: action).flatMap { $0.code.first == "5" ? $0.enhanced : nil } ?? "5.7.1"
                    reply = head.result("reject|\(Self.rejectCode(action)) \(enhanced) " + (t.isEmpty ? "Refused" : t))
                }
            }
        } else {
            actions.append(.log(.daemon, "cannot ask the greylag daemon (\(failure ?? "no answer")); passing the mail"))
            reply = head.result("proceed")
        }
        sessions[id] = s
        actions.append(.write(reply))
        return actions + pump(id)
    }

    /// The 4xx code and enhanced code of the daemon's action (a `[[rules]]`
    /// entry's `defer_code`, `450 4.7.1 ...`), or `451 4.7.1`.
    static func deferCode(_ action: String) -> String {
        guard let c = GateVerdict.code(of: action), c.code.first == "4" else { return "451 4.7.1" }
        return "\(c.code) \(c.enhanced ?? "4.7.1")"
    }

    /// A 5xx code of the daemon's action (`554 5.7.1 ...`), or 550.
    static func rejectCode(_ action: String) -> String {
        let word = action.prefix { $0 != " " }
        if word.count == 3, word.first == "5", word.allSatisfy({ $0 >= "0" && $0 <= "9" }) { return String(word) }
        return "550"
    }

    /// The address in an `rcpt-to` parameter: smtpd passes it without the
    /// angle brackets (6.8) but may keep them or ESMTP parameters after it.
    static func recipient(_ parameter: ArraySlice<UInt8>) -> String {
        var text = Substring(String(decoding: parameter, as: UTF8.self))
        text = text.drop { $0 == " " }
        if text.first == "<" {
            text = text.dropFirst()
            if let close = text.firstIndex(of: ">") { text = text[..<close] }
            return String(text)
        }
        return String(text.prefix { $0 != " " })
    }

    /// Printable ASCII only (anything else a space), trimmed, at most `limit` characters.
    static func printable(_ text: String, limit: Int) -> String {
        let bytes = text.utf8.prefix(limit * 4).map { $0 >= 0x20 && $0 < 0x7F ? $0 : UInt8(ascii: " ") }
        let s = String(decoding: bytes.prefix(limit), as: UTF8.self)
        return String(s.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }

    /// A line as a log may show it: at most 160 bytes, control bytes escaped.
    static func excerpt(_ line: [UInt8]) -> String {
        var out = ""
        for b in line.prefix(160) {
            if b >= 0x20 && b < 0x7F && b != UInt8(ascii: "\\") { out.append(Character(Unicode.Scalar(b))) } else {
                let hex = String(b, radix: 16)
                out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return line.count > 160 ? out + "... (\(line.count) bytes)" : out
    }
}

// MARK: sessions

extension FilterStateMachine {
    enum Client: Sendable, Hashable {
        case address(String)
        /// smtpd's own socket (`smtpctl`, `sendmail`): local mail, never greylisted.
        case local
        /// A form this filter does not read.
        case unknown(String)
    }

    /// One request waiting for its answer.
    struct Pending: Sendable {
        var version: FilterProtocolVersion
        var session: ArraySlice<UInt8>
        var token: ArraySlice<UInt8>
        var phase: String
        var parameter: ArraySlice<UInt8>

        /// `filter-result|...|RESULT` in this version's order.
        func result(_ result: String) -> [UInt8] {
            reply("filter-result", Array(result.utf8))
        }

        /// `filter-dataline|...|LINE`.
        func dataLine(_ line: [UInt8]) -> [UInt8] {
            reply("filter-dataline", line)
        }

        private func reply(_ kind: String, _ tail: [UInt8]) -> [UInt8] {
            var out = Array(kind.utf8)
            out.append(UInt8(ascii: "|"))
            out += version.replyTokenFirst ? token : session
            out.append(UInt8(ascii: "|"))
            out += version.replyTokenFirst ? session : token
            out.append(UInt8(ascii: "|"))
            out += tail
            return out
        }

        /// The answer that needs no daemon: a data line echoed (after the
        /// header, if any), any other request `proceed`.
        func immediateReply(header: [UInt8]?) -> [UInt8] {
            phase == "data-line" ? dataLine(Array(parameter)) : result("proceed")
        }
    }

    struct Session: Sendable {
        var serial: UInt64
        var client: Client
        var rdns: String
        var fcrdns: Bool
        var helo = ""
        var esmtp = false
        var user = ""
        var msgid = ""
        var sender: String? = nil
        /// The `X-Greylist` line to add to this transaction's message.
        var header: [UInt8]? = nil
        var inData = false
        var queue: [Pending] = []
        /// The ticket of the question the head of `queue` waits for.
        var waiting: UInt64? = nil

        init(serial: UInt64, client: Client, rdns: String, fcrdns: Bool) {
            self.serial = serial
            self.client = client
            self.rdns = rdns
            self.fcrdns = fcrdns
        }

        var idle: Bool { waiting == nil && queue.isEmpty }

        mutating func newTransaction(msgid: String) {
            self.msgid = msgid
            sender = nil
            header = nil
            inData = false
        }

        mutating func endTransaction() {
            sender = nil
            header = nil
            inData = false
        }

        enum Decision {
            case ask([Attribute])
            case pass
        }

        /// The policy request for a recipient, as Postfix would send it;
        /// `pass` when there is nothing greylag could key on.
        func question(recipient: String) -> Decision {
            guard case .address(let address) = client, let sender else { return .pass }
            let verified = fcrdns && !rdns.isEmpty ? rdns : "unknown"
            return .ask([
                Attribute("request", "smtpd_access_policy"), Attribute("protocol_state", "RCPT"),
                Attribute("protocol_name", esmtp ? "ESMTP" : "SMTP"), Attribute("client_address", address),
                Attribute("client_name", verified), Attribute("reverse_client_name", rdns.isEmpty ? "unknown" : rdns),
                Attribute("helo_name", helo), Attribute("sender", sender), Attribute("recipient", recipient),
                Attribute("sasl_username", user), Attribute("queue_id", msgid), Attribute("instance", msgid),
                Attribute("greylag_origin", "smtpd-filter"),
            ])
        }
    }
}
