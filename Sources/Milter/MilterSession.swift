import GreylagCore

/// How the milter words its replies and headers.
public struct MilterReplyConfig: Sendable, Hashable {
    /// Which `X-Greylist` header is added at end of message.
    public enum HeaderMode: String, Sendable, Hashable, CaseIterable {
        case none
        /// Only on mail that was delayed: `Delayed for HH:MM:SS by ...`.
        case delayed
        /// Only on mail that passed without delay: `... not delayed by ...`.
        case whitelisted
        case all
    }

    /// SMTP code and enhanced code for a deferred recipient.
    public var deferCode = "451 4.7.1"
    /// Text after the code; placeholders as in `ReplyTemplate`.
    public var deferText = "Greylisting in action, please come back in {hms}"
    /// SMTP code and enhanced code for a refused recipient.
    public var rejectCode = "550 5.7.1"
    public var rejectText = "Refused by greylag policy"
    public var header: HeaderMode = .delayed
    /// Program name and version in the header, e.g. `greylag-0.1.0`.
    public var software = "greylag"
    /// Host name in the header when the MTA sends no `j` macro.
    public var hostname = "localhost"

    public init() {}
}

/// Per-connection milter logic: option negotiation, what each command means
/// for greylisting, and how verdicts become replies. Pure: the handler
/// performs the actions it returns.
///
/// One connection carries one SMTP session (and, after `K`, the next one);
/// a message starts at MAIL and ends at end of message or `A`. Each
/// recipient is decided on its own; the end of message adds at most one
/// `X-Greylist` header.
///
/// The recipients of a message from the null sender `<>` pass at RCPT and
/// are decided at DATA (at end of message when the MTA sends no DATA), one
/// after another: the message is deferred if any of them is. So another
/// MTA's call-out verification (`MAIL FROM:<>`, `RCPT TO`, then QUIT) is
/// never deferred, while a real bounce is greylisted like other mail.
public struct MilterSession: Sendable {
    public var config: MilterReplyConfig

    /// What the MTA is to be sent.
    public enum Action: Sendable, Hashable {
        case reply([MilterResponse])
        /// Nothing: the command expects no reply.
        case none
        /// Ask for a greylisting decision, then call `verdictReceived`.
        case decide(GreylistQuery)
    }

    /// Protocol flags agreed in negotiation (0 until then: reply to all).
    private(set) var agreedFlags: UInt32 = 0
    private(set) var mayAddHeaders = false
    private var macros: [UInt8: [String: String]] = [:]
    /// Log lines the handler is to write (dropped macros), once per kind and connection.
    private var notices: [String] = []
    private var warnedStage = false
    private var warnedCap = false
    /// Log lines about refused values (see `refusal`), once per kind and connection.
    private var warnings: [String] = []
    private var warnedValues: Set<String> = []
    /// Why the connect or HELO values cannot make a key, if they cannot.
    private var badConnection: String? = nil
    /// Why the MAIL values cannot make a key, if they cannot.
    private var badSender: String? = nil
    private var clientAddress = ""
    private var clientName = ""
    /// What the MTA said of the client's reverse name (see `reverseName(host:)`).
    private var reverse: (name: ReverseName, ptr: String) = (.notChecked, "")
    private var helo = ""
    private var sender = ""
    private var lastQuery: GreylistQuery? = nil
    /// Longest delay of a recipient of this message that passed after its delay.
    private var messageDelayed: Int64? = nil
    /// Why a recipient of this message passed without delay.
    private var messageNotDelayed: DecisionReason? = nil
    /// The recipients of a null-sender message, decided at DATA or end of message.
    private var held: [GreylistQuery] = []
    /// Which of `held` is being decided, and at which command; nil while none is.
    private var deciding: (index: Int, atData: Bool)? = nil
    /// The first deferral and the first refusal among the held recipients.
    private var heldDeferral: (Verdict, GreylistQuery)? = nil
    private var heldRefusal: (Verdict, GreylistQuery)? = nil

    /// Most recipients of one null-sender message held for DATA (Postfix's
    /// `smtpd_recipient_limit` is 1000); the ones after are decided at RCPT.
    public static let maxHeldRecipients = 1000

    public init(config: MilterReplyConfig) {
        self.config = config
    }

    /// The flags greylag asks for: no headers, body, end of headers or
    /// unknown commands, and no replies where it has nothing to say. DATA
    /// is wanted, with a reply: null-sender messages are decided there.
    static let wantedFlags: UInt32 = MilterFlags.noBody | MilterFlags.noHeaders | MilterFlags.noEndOfHeaders
        | MilterFlags.noUnknown | MilterFlags.noReplyConnect | MilterFlags.noReplyHelo
        | MilterFlags.noReplyMail | MilterFlags.noReplyUnknown
        | MilterFlags.noReplyEndOfHeaders | MilterFlags.noReplyBody | MilterFlags.noReplyHeader

    /// A command arrived; `now` dates a header added at end of message.
    public mutating func received(_ command: MilterCommand, now: Int64) -> Action {
        switch command {
        case .optionNegotiation(let version, let actions, let offered):
            // Never ask for a bit the MTA did not offer: both MTAs abort.
            agreedFlags = Self.wantedFlags & offered
            let wantHeaders = config.header != .none && actions & MilterFlags.addHeaders != 0
            mayAddHeaders = wantHeaders
            return .reply([.negotiate(version: min(version, 6), actions: wantHeaders ? MilterFlags.addHeaders : 0,
                                      protocolFlags: agreedFlags)])
        case .macros(let stage, let list):
            storeMacros(stage: stage, list)
            return .none
        case .connect(let host, let family, _, let address):
            resetConnection()
            if family == UInt8(ascii: "4") || family == UInt8(ascii: "6") {
                clientAddress = address.hasPrefix("IPv6:") ? String(address.dropFirst(5)) : address
            }
            // Postfix writes an unverified name as "[192.0.2.1]".
            clientName = host.hasPrefix("[") || host == "unknown" ? "" : host
            reverse = reverseName(host: host)
            if !"46LU".utf8.contains(family) {
                // A NUL inside the host name shifts the fields after it.
                badConnection = "connect with address family 0x\(String(family, radix: 16)) (host \(Self.shown(host)))"
            } else {
                badConnection = Self.refusal("client name", host) ?? Self.refusal("client address", address)
            }
            return reply(unless: MilterFlags.noReplyConnect)
        case .helo(let name):
            helo = name
            if badConnection == nil { badConnection = Self.refusal("HELO name", name) }
            return reply(unless: MilterFlags.noReplyHelo)
        case .mail(let args):
            resetMessage()
            sender = Self.bare(args.first ?? "")
            badSender = Self.refusal("sender", args)
            return reply(unless: MilterFlags.noReplyMail)
        case .rcpt(let args):
            // A value greylag cannot key on as the MTA meant it: the
            // recipient passes unasked (continue) and is logged. Closing the
            // connection instead would make the MTA apply its milter default
            // action (Postfix: tempfail), stopping mail; deciding on a cut
            // value would store a key that is not the one logged.
            if let why = badConnection ?? badSender ?? Self.refusal("recipient", args) {
                warn(why)
                return .reply([.continue])
            }
            var query = GreylistQuery(stage: .rcpt, clientAddress: clientAddress, clientName: clientName,
                                      heloName: helo, sender: sender, recipient: Self.bare(args.first ?? ""),
                                      authenticatedUser: macro("auth_authen", stage: "M"), origin: "milter")
            query.reverseName = reverse.name
            query.ptrName = reverse.ptr
            if sender.isEmpty || sender == "<>", held.count < Self.maxHeldRecipients {
                held.append(query)  // decided at DATA
                return .reply([.continue])
            }
            lastQuery = query
            return .decide(query)
        case .data:
            if !held.isEmpty {
                deciding = (0, true)
                return .decide(held[0])
            }
            return reply(unless: MilterFlags.noReplyData)
        case .header: return reply(unless: MilterFlags.noReplyHeader)
        case .endOfHeaders: return reply(unless: MilterFlags.noReplyEndOfHeaders)
        case .body: return reply(unless: MilterFlags.noReplyBody)
        case .unknown: return reply(unless: MilterFlags.noReplyUnknown)
        case .endOfMessage:
            if !held.isEmpty {
                // No DATA came (an MTA that does not send it): decide now.
                deciding = (0, false)
                return .decide(held[0])
            }
            var out: [MilterResponse] = []
            if mayAddHeaders, let value = headerValue(now: now) { out.append(.addHeader(name: "X-Greylist", value: value)) }
            out.append(.continue)
            resetMessage()
            return .reply(out)
        case .abort:
            resetMessage()
            return .none
        case .quit:
            return .none
        case .quitNewConnection:
            resetConnection()
            return .none
        }
    }

    /// True while the recipients of a null-sender message are being decided
    /// (at DATA or end of message): their verdicts go to `heldVerdictReceived`.
    public var isDecidingHeld: Bool { deciding != nil }

    /// The decision for a held recipient arrived: the next one to decide,
    /// or, after the last, the reply to DATA or end of message: the first
    /// deferral's reply when any was deferred, else the first refusal's,
    /// else the message goes on (with its header at end of message).
    public mutating func heldVerdictReceived(_ verdict: Verdict, now: Int64) -> Action {
        guard let d = deciding, d.index < held.count else { return .reply([.continue]) }
        let query = held[d.index]
        switch verdict.action {
        case .defer: if heldDeferral == nil { heldDeferral = (verdict, query) }
        case .reject: if heldRefusal == nil { heldRefusal = (verdict, query) }
        case .pass: notePass(verdict)
        }
        if d.index + 1 < held.count {
            deciding = (d.index + 1, d.atData)
            return .decide(held[d.index + 1])
        }
        deciding = nil
        held = []
        if let first = heldDeferral ?? heldRefusal {
            let response = reply(for: first.0, query: first.1)
            resetMessage()
            return .reply([response])
        }
        if d.atData { return .reply([.continue]) }
        return received(.endOfMessage, now: now)
    }

    /// The reply for a deferred or refused recipient.
    private func reply(for verdict: Verdict, query: GreylistQuery) -> MilterResponse {
        // A `[[rules]]` entry's code and text, where it sets them.
        let r = verdict.reply
        if verdict.action == .reject {
            return .replyCode(Self.replyText(r?.rejectCode ?? config.rejectCode,
                                             ReplyTemplate.expand(r?.rejectText ?? config.rejectText, verdict: verdict, query: query)))
        }
        return .replyCode(Self.replyText(r?.deferCode ?? config.deferCode,
                                         ReplyTemplate.expand(r?.deferText ?? config.deferText, verdict: verdict, query: query)))
    }

    /// A recipient passed: what the header at end of message says.
    private mutating func notePass(_ verdict: Verdict) {
        if let d = verdict.delayed, d > 0 {
            messageDelayed = max(messageDelayed ?? 0, d)
        } else if messageNotDelayed == nil {
            messageNotDelayed = verdict.reason
        }
    }

    /// The decision for the recipient asked about arrived.
    public mutating func verdictReceived(_ verdict: Verdict) -> MilterResponse {
        let query = lastQuery ?? GreylistQuery(clientAddress: clientAddress, sender: sender, recipient: "")
        switch verdict.action {
        case .defer, .reject:
            return reply(for: verdict, query: query)
        case .pass:
            notePass(verdict)
            return .continue
        }
    }

    /// The X-Greylist value for this message, or nil for none.
    func headerValue(now: Int64) -> String? {
        let by = "by \(config.software) (\(serverName)); \(MailDate.format(epochSeconds: now))"
        if let d = messageDelayed, config.header == .delayed || config.header == .all {
            return "Delayed for \(DurationText.clock(d)) \(by)"
        }
        if let reason = messageNotDelayed, config.header == .whitelisted || config.header == .all {
            switch reason {
            case .authenticated: return "Sender succeeded SMTP AUTH, not delayed \(by)"
            case .trustedClient: return "Sender IP whitelisted, not delayed \(by)"
            case .whitelisted, .recipientOptedOut, .recipientNotOptedIn: return "Sender whitelisted, not delayed \(by)"
            case .clientAutowhitelisted, .knownTriplet:
                return "IP, sender and recipient auto-whitelisted, not delayed \(by)"
            default: return nil
            }
        }
        return nil
    }

    /// `host [address]` of the MTA, from its macros.
    var serverName: String {
        let host = macro("j", stage: "C").isEmpty ? config.hostname : macro("j", stage: "C")
        let address = macro("daemon_addr", stage: "C").isEmpty ? macro("if_addr", stage: "C") : macro("daemon_addr", stage: "C")
        return address.isEmpty ? host : "\(host) [\(address)]"
    }

    /// Stages libmilter defines macros for: connect, HELO, MAIL, RCPT,
    /// DATA (`T`; `A` in some MTAs' wording), end of headers, end of message.
    public static let macroStages: Set<UInt8> = Set("CHMRATNE".utf8)
    /// Most macros kept for one stage.
    public static let maxMacrosPerStage = 64
    /// Most bytes of macro names and values kept for one connection.
    public static let maxMacroBytes = 64 * 1024

    /// Bytes of macro names and values the session holds.
    public var heldMacroBytes: Int {
        macros.values.reduce(0) { sum, stage in stage.reduce(sum) { $0 + $1.key.utf8.count + $1.value.utf8.count } }
    }

    /// Log lines about refused values since the last call; the handler logs them as warnings.
    public mutating func takeWarnings() -> [String] {
        defer { warnings = [] }
        return warnings
    }

    /// Most different refused values logged for one connection.
    static let maxWarnings = 16

    private mutating func warn(_ why: String) {
        guard warnedValues.count < Self.maxWarnings, warnedValues.insert(why).inserted else { return }
        warnings.append("milter: not greylisting, letting the recipient pass: the MTA sent \(why)"
            + (warnedValues.count == Self.maxWarnings ? " (further ones on this connection are not logged)" : ""))
    }

    /// True if `s` has a control byte (0x00-0x1F, 0x7F): a NUL the decoder
    /// kept inside a value, or any other byte that is no part of a name.
    static func hasControlByte(_ s: String) -> Bool {
        s.utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }

    /// A value as the log shows it: escaped, at most 64 characters.
    static func shown(_ s: String) -> String {
        "\"" + String(s.prefix(64)).logEscaped + (s.count > 64 ? "..." : "") + "\""
    }

    /// Why `value` cannot be part of a key, or nil.
    static func refusal(_ what: String, _ value: String) -> String? {
        hasControlByte(value) ? "a \(what) with a control byte: \(shown(value))" : nil
    }

    /// Why MAIL or RCPT arguments cannot make a key, or nil: a control byte
    /// in any of them, or an address cut in two by a NUL (`<a@b` then `x>`;
    /// both MTAs send the address in angle brackets).
    static func refusal(_ what: String, _ args: [String]) -> String? {
        if let bad = args.first(where: hasControlByte) { return refusal(what, bad) }
        if let first = args.first, first.hasPrefix("<") != first.hasSuffix(">") {
            return "a \(what) cut by a NUL: \(shown(args.joined(separator: "\u{0}")))"
        }
        return nil
    }

    /// Log lines about dropped macros since the last call.
    public mutating func takeNotices() -> [String] {
        defer { notices = [] }
        return notices
    }

    /// Keeps a stage's macros within the caps; what is over is dropped (mail
    /// keeps flowing) and logged once per connection.
    private mutating func storeMacros(stage: UInt8, _ list: [MilterMacro]) {
        guard Self.macroStages.contains(stage) else {
            if !warnedStage {
                warnedStage = true
                notices.append("ignoring milter macros for undefined stage 0x\(String(stage, radix: 16))")
            }
            return
        }
        macros[stage] = nil
        var budget = Self.maxMacroBytes - heldMacroBytes
        var values: [String: String] = [:]
        var dropped = 0
        for m in list {
            let size = m.name.utf8.count + m.value.utf8.count
            let replaced = values[m.name].map { m.name.utf8.count + $0.utf8.count } ?? 0
            if (replaced == 0 && values.count >= Self.maxMacrosPerStage) || size - replaced > budget {
                dropped += 1
                continue
            }
            budget -= size - replaced
            values[m.name] = m.value
        }
        macros[stage] = values
        if dropped > 0 && !warnedCap {
            warnedCap = true
            notices.append("dropping \(dropped) milter macros for stage 0x\(String(stage, radix: 16)): over "
                + "\(Self.maxMacrosPerStage) macros per stage or \(Self.maxMacroBytes) bytes per connection")
        }
    }

    /// A macro's value; "" when absent or when it has a control byte (it
    /// would go into a header or name a user other than the one logged).
    private func macro(_ name: String, stage: Character) -> String {
        let value = macros[stage.asciiValue!]?[name] ?? ""
        return Self.hasControlByte(value) ? "" : value
    }

    /// The client's reverse name as the connect command and its macros
    /// tell it. Sendmail's `{client_resolve}` says how its host name was
    /// checked (`OK`, `FORGED`: the PTR name does not resolve back, `FAIL`:
    /// no PTR, `TEMP`: unknown). Postfix sends the verified name, or
    /// `[ADDRESS]` without one, and the unverified PTR name as `{client_ptr}`
    /// when `milter_connect_macros` asks for it. Otherwise `.notChecked`:
    /// greylag looks the name up itself when a rule needs it.
    func reverseName(host: String) -> (name: ReverseName, ptr: String) {
        let name = host.lowercased()
        let bracketed = host.hasPrefix("[") || host == "unknown" || host.isEmpty
        switch macro("client_resolve", stage: "C").uppercased() {
        case "OK": return bracketed ? (.notChecked, "") : (.confirmed(name), name)
        case "FORGED": return bracketed ? (.unconfirmed, "") : (.unconfirmed, name)
        case "FAIL": return (.absent, "")
        case "TEMP": return (.notChecked, "")
        default: break
        }
        guard bracketed else { return (.confirmed(name), name) }
        let ptr = macro("client_ptr", stage: "C").lowercased()
        if ptr == "unknown" { return (.absent, "") }
        if !ptr.isEmpty && !ptr.hasPrefix("[") { return (.unconfirmed, ptr) }
        return (.notChecked, "")
    }

    private func reply(unless flag: UInt32) -> Action {
        agreedFlags & flag != 0 ? .none : .reply([.continue])
    }

    private mutating func resetMessage() {
        sender = ""
        badSender = nil
        lastQuery = nil
        messageDelayed = nil
        messageNotDelayed = nil
        held = []
        deciding = nil
        heldDeferral = nil
        heldRefusal = nil
    }

    private mutating func resetConnection() {
        resetMessage()
        clientAddress = ""
        clientName = ""
        reverse = (.notChecked, "")
        helo = ""
        badConnection = nil
        warnedValues = []
        macros = macros.filter { $0.key == UInt8(ascii: "C") }
    }

    /// An address without angle brackets.
    static func bare(_ s: String) -> String {
        let bytes = s.utf8
        guard bytes.count >= 2, bytes.first == UInt8(ascii: "<"), bytes.last == UInt8(ascii: ">") else { return s }
        return String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self)
    }

    /// `CODE TEXT` with `%` doubled (libmilter formats the text) and line
    /// breaks (every CR and LF byte) removed. Works on bytes: a `Character`
    /// loop cost a tenth of a milter decision, and it kept a CR LF pair,
    /// which is one `Character`.
    static func replyText(_ code: String, _ text: String) -> String {
        let special: (UInt8) -> Bool = { $0 == UInt8(ascii: "%") || $0 == 0x0D || $0 == 0x0A }
        guard text.utf8.contains(where: special) else { return text.isEmpty ? code : code + " " + text }
        var clean: [UInt8] = []
        clean.reserveCapacity(text.utf8.count + 8)
        for byte in text.utf8 {
            switch byte {
            case 0x0D, 0x0A: continue
            case UInt8(ascii: "%"): clean.append(contentsOf: [UInt8(ascii: "%"), UInt8(ascii: "%")])
            default: clean.append(byte)
            }
        }
        return clean.isEmpty ? code : code + " " + String(decoding: clean, as: UTF8.self)
    }
}
