/// The qmail side of greylag: the qmail-spp plugin, the envelope scanner
/// and the tcpserver wrapper, as pure functions of the environment and of
/// one question to the daemon, so they can be tested without qmail.
public enum QmailHelpers {
    /// Reads an environment variable; nil when unset (set and empty is "").
    public typealias Environment = (String) -> String?
    /// Asks the daemon; returns the policy action.
    public typealias Ask = ([(String, String)]) throws -> String

    /// The client address from tcpserver, without the `::ffff:` of an IPv4
    /// client on an IPv6 socket (`PROTO=TCP6`).
    public static func clientAddress(_ env: Environment) -> String {
        let ip = env("TCPREMOTEIP") ?? ""
        if ip.lowercased().hasPrefix("::ffff:"), ip.contains(".") { return String(ip.dropFirst(7)) }
        return ip
    }

    static func request(_ env: Environment, origin: String, sender: String, recipient: String) -> [(String, String)] {
        let name = env("TCPREMOTEHOST") ?? ""
        return [("request", "smtpd_access_policy"), ("protocol_state", "RCPT"), ("protocol_name", "SMTP"),
                ("client_address", clientAddress(env)), ("client_name", name.isEmpty ? "unknown" : name),
                ("helo_name", env("SMTPHELOHOST") ?? ""), ("sender", sender), ("recipient", recipient),
                ("sasl_username", env("SMTPAUTHUSER") ?? ""), ("greylag_origin", origin)]
    }

    // MARK: qmail-spp

    /// Options of `greylag qmail-spp`.
    public struct SPPOptions: Sendable {
        /// The plugin acts only when this variable is set (nil: always).
        public var activation: String? = "GREYLISTING"
        /// Answer with the old plugin's texts.
        public var legacyText = false
        /// Reply code for a refusal (553 or 550).
        public var rejectCode = "553"
        public init() {}
    }

    /// What the plugin prints (LF-terminated lines, nothing to pass) and
    /// what it says on standard error (qmail logs it).
    public static func spp(_ env: Environment, options: SPPOptions, ask: Ask) -> (stdout: String, stderr: String?) {
        if let variable = options.activation, env(variable) == nil { return ("", nil) }
        if env("RELAYCLIENT") != nil { return ("", nil) }
        if let user = env("SMTPAUTHUSER"), !user.isEmpty { return ("", nil) }
        let action: String
        do {
            action = try ask(request(env, origin: "qmail-spp", sender: env("SMTPMAILFROM") ?? "",
                                     recipient: env("SMTPRCPTTO") ?? ""))
        } catch {
            return ("", "greylag qmail-spp: \(error); passing the mail\n")
        }
        // A numeric action (a `[[rules]]` entry's code) gives the code;
        // a keyword action leaves the plugin's own.
        let code = GateVerdict.code(of: action)
        switch GateVerdict(action: action) {
        case .pass: return ("", nil)
        case .defer(let text):
            let c = code.map { "\($0.code) \($0.enhanced ?? "4.7.1")" } ?? "451 4.7.1"
            return (options.legacyText ? "E451 temporary failure (#4.3.0)\n" : "E\(c) \(oneLine(text))\n", nil)
        case .reject(let text):
            let c = code.map { "\($0.code) \($0.enhanced ?? "5.7.1")" } ?? "\(options.rejectCode) 5.7.1"
            return (options.legacyText ? "E553 sorry, your envelope sender has been denied (#5.7.1)\n"
                        : "E\(c) \(oneLine(text))\n", nil)
        }
    }

    // MARK: envelope scanner

    /// Exit status of `greylag qmail-envelope-scanner MAILFROM RCPTTO`:
    /// 101 defer, 100 refuse, 0 pass; and a message for standard error.
    public static func envelopeScanner(_ env: Environment, sender: String, recipient: String,
                                       ask: Ask) -> (status: Int32, stderr: String?) {
        if env("RELAYCLIENT") != nil { return (0, nil) }
        if let user = env("SMTPAUTHUSER"), !user.isEmpty { return (0, nil) }
        do {
            switch GateVerdict(action: try ask(request(env, origin: "qmail-scanner", sender: sender, recipient: recipient))) {
            case .pass: return (0, nil)
            case .defer: return (101, nil)
            case .reject: return (100, nil)
            }
        } catch {
            return (0, "greylag qmail-envelope-scanner: \(error); passing the mail\n")
        }
    }

    // MARK: tcpserver wrapper

    /// Settings of `greylag qmail-wrap`, from jgreylist's variables or
    /// greylag's names for them.
    public struct WrapOptions: Sendable, Hashable {
        /// Seconds a new client must wait (JGREYLIST_HOLDTIME).
        public var holdTime: Int64 = 120
        /// Seconds of silence before the wrapper hangs up (JGREYLIST_TIMEOUT, 5...300).
        public var timeout: Int32 = 60
        /// Key by exact address instead of /24 and /64 (JGREYLIST_BY_IP).
        public var byAddress = false
        /// Log the SMTP dialogue to standard error (JGREYLIST_LOG_SMTP).
        public var logSMTP = false
        /// JGREYLIST set and empty: this client is whitelisted.
        public var whitelisted = false
        /// JGREYLIST set to a text: deny with 553 and that text.
        public var deny: String? = nil
        /// JGREYLIST_NOREV: deny clients without a reverse name.
        public var denyWithoutReverse = false
        /// Values from the environment that were ignored, for standard error.
        public var problems: [String] = []

        /// The longest hold time the daemon takes as `greylag_delay` (30 days).
        public static let maxHoldTime: Int64 = 30 * 86_400

        public init() {}

        public init(_ env: Environment) {
            func value(_ names: String...) -> String? {
                for n in names { if let v = env(n) { return v } }
                return nil
            }
            if let v = value("GREYLAG_WRAP", "JGREYLIST") {
                if v.isEmpty { whitelisted = true } else { deny = v }
            }
            if let v = value("GREYLAG_WRAP_NOREV", "JGREYLIST_NOREV") { denyWithoutReverse = !v.isEmpty && v != "0" }
            if let v = value("GREYLAG_WRAP_HOLDTIME", "JGREYLIST_HOLDTIME") {
                if let n = Int64(v), n >= 0, n <= Self.maxHoldTime { holdTime = n } else {
                    problems.append("hold time \"\(v)\" is not 0 to \(Self.maxHoldTime) seconds; using \(holdTime)")
                }
            }
            if let v = value("GREYLAG_WRAP_TIMEOUT", "JGREYLIST_TIMEOUT"), let n = Int32(v) { timeout = min(300, max(5, n)) }
            if let v = value("GREYLAG_WRAP_BY_IP", "JGREYLIST_BY_IP") { byAddress = !v.isEmpty && v != "0" }
            if let v = value("GREYLAG_WRAP_LOG_SMTP", "JGREYLIST_LOG_SMTP") { logSMTP = !v.isEmpty && v != "0" }
        }
    }

    /// What the wrapper does with a connection.
    public enum WrapDecision: Sendable, Hashable {
        /// Hand the connection to the wrapped program.
        case exec
        /// Speak SMTP and answer 450 with this text.
        case `defer`(String)
        /// Speak SMTP and answer 553 with this text.
        case deny(String)
    }

    public static func wrap(_ env: Environment, options: WrapOptions, ask: Ask) -> (WrapDecision, stderr: String?) {
        if env("RELAYCLIENT") != nil || options.whitelisted { return (.exec, nil) }
        if let text = options.deny { return (.deny(text), nil) }
        if options.denyWithoutReverse && (env("TCPREMOTEHOST") ?? "").isEmpty {
            return (.deny("No reverse DNS for \(clientAddress(env)); mail refused"), nil)
        }
        var attributes = request(env, origin: "qmail-wrap", sender: "", recipient: "")
        attributes += [("greylag_scope", "connection"), ("greylag_delay", String(options.holdTime))]
        if options.byAddress { attributes.append(("greylag_key", "address")) }
        do {
            switch GateVerdict(action: try ask(attributes)) {
            case .pass: return (.exec, nil)
            case .defer(let text): return (.defer(text.isEmpty ? "Greylisted, try again later" : oneLine(text)), nil)
            case .reject(let text): return (.deny(text.isEmpty ? "Refused" : oneLine(text)), nil)
            }
        } catch {
            return (.exec, "greylag qmail-wrap: \(error); passing the connection\n")
        }
    }

    static func oneLine(_ s: String) -> String { String(s.filter { $0 != "\n" && $0 != "\r" }) }
}

/// The minimal SMTP server the wrapper speaks to a client it holds back:
/// it accepts HELO/EHLO/MAIL/RSET/NOOP, answers QUIT, and refuses
/// everything else (RCPT, DATA, ...) with the temporary or permanent code.
public struct HoldingSMTP: Sendable {
    public let hostname: String
    public let decision: QmailHelpers.WrapDecision

    public init(hostname: String, decision: QmailHelpers.WrapDecision) {
        self.hostname = hostname
        self.decision = decision
    }

    public var greeting: String { "220 \(hostname) ESMTP greylag\r\n" }
    public var timeoutReply: String { "421 4.4.2 \(hostname) timeout, closing connection\r\n" }

    /// The reply to one command line, and whether to close afterwards.
    public func reply(to line: String) -> (String, close: Bool) {
        let verb = line.prefix { $0 != " " && $0 != "\r" && $0 != "\n" }.uppercased()
        switch verb {
        case "HELO", "EHLO": return ("250 \(hostname)\r\n", false)
        case "MAIL", "RSET", "NOOP": return ("250 2.0.0 ok\r\n", false)
        case "QUIT": return ("221 2.0.0 \(hostname) closing connection\r\n", true)
        default:
            switch decision {
            case .deny(let text): return ("553 5.7.1 \(text)\r\n", false)
            case .defer(let text): return ("450 4.7.1 \(text)\r\n", false)
            case .exec: return ("250 2.0.0 ok\r\n", false)
            }
        }
    }
}
