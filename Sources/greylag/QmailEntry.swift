#if canImport(Glibc)
import Glibc
#endif
import QmailGate

/// `greylag qmail-spp`, `qmail-envelope-scanner` and `qmail-wrap`: run once
/// per recipient or connection, so they are dispatched before the argument
/// parser and the rest of the program start, and use plain system calls.
enum QmailEntry {
    /// Where the qmail setup of docs/qmail.md has the daemon listen for the helpers
    /// (`policy.helper_listen`): only such a listener honours their attributes.
    static let defaultSocket = "/run/greylag/policy.sock"

    /// Runs a qmail entry point named by `args[1]`; nil if it is none.
    static func run(_ args: [String]) -> Int32? {
        guard args.count > 1 else { return nil }
        switch args[1] {
        case "qmail-spp": return spp(Array(args.dropFirst(2)))
        case "qmail-envelope-scanner": return scanner(Array(args.dropFirst(2)))
        case "qmail-wrap": return wrap(Array(args.dropFirst(2)))
        default: return nil
        }
    }

    static func env(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        return String(cString: p)
    }

    /// Common options; returns the client and the arguments left.
    static func common(_ args: [String], usage: String,
                       extra: (String, inout [String].Iterator) -> Bool = { _, _ in false }) -> (PolicyClient, [String])? {
        var target = env("GREYLAG_SOCKET") ?? defaultSocket
        var timeout: Int32 = 3000
        var rest: [String] = []
        var it = args.makeIterator()
        while let a = it.next() {
            if !rest.isEmpty { rest.append(a); continue }  // after the first operand, everything is an operand
            switch a {
            case "--socket":
                guard let v = it.next() else { fail(usage) ; return nil }
                target = v
            case "--timeout":
                guard let v = it.next(), let ms = Int32(v), ms > 0 else { fail(usage); return nil }
                timeout = ms
            case "-h", "--help":
                print(usage)
                exit(0)
            default:
                if a.hasPrefix("--") {
                    if !extra(a, &it) { fail("unknown option \(a)\n" + usage); return nil }
                } else {
                    rest.append(a)
                }
            }
        }
        return (PolicyClient(target: target, timeoutMilliseconds: timeout), rest)
    }

    static func fail(_ message: String) {
        write(2, message + "\n")
    }

    static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + sent, $0.count - sent) }
            if n <= 0 { if errno == EINTR { continue }; return }
            sent += n
        }
    }

    // MARK: qmail-spp

    static let sppUsage = """
        usage: greylag qmail-spp [--socket unix:/path|HOST:PORT] [--timeout MS] [--legacy-text]
                                 [--always | --activation VARIABLE] [--reject-code 553|550]
        A qmail-spp [rcpt] plugin: asks the greylag daemon (default \(defaultSocket), or $GREYLAG_SOCKET;
        a listener of policy.helper_listen) and prints E451 to defer, E553/E550 to refuse, nothing to pass.
        """

    static func spp(_ args: [String]) -> Int32 {
        var options = QmailHelpers.SPPOptions()
        var bad = false
        guard let (client, rest) = common(args, usage: sppUsage, extra: { a, it in
            switch a {
            case "--legacy-text": options.legacyText = true
            case "--always": options.activation = nil
            case "--activation":
                guard let v = it.next() else { bad = true; return true }
                options.activation = v
            case "--reject-code":
                guard let v = it.next(), v == "553" || v == "550" || v == "554" else { bad = true; return true }
                options.rejectCode = v
            default: return false
            }
            return true
        }), !bad, rest.isEmpty else {
            fail(sppUsage)
            return 120  // qmail answers 451 for a plugin that fails
        }
        let (out, err) = QmailHelpers.spp(env, options: options, ask: { try client.ask($0) })
        if let err { write(2, err) }
        write(1, out)
        return 0
    }

    // MARK: envelope scanner

    static let scannerUsage = """
        usage: greylag qmail-envelope-scanner [--socket unix:/path|HOST:PORT] [--timeout MS] MAILFROM RCPTTO
        The ENVELOPE_SCANNER of the Plesk qmail patch: asks the greylag daemon (default \(defaultSocket),
        or $GREYLAG_SOCKET; a listener of policy.helper_listen); exit 101 to defer, 100 to refuse, 0 to pass.
        """

    static func scanner(_ args: [String]) -> Int32 {
        guard let (client, rest) = common(args, usage: scannerUsage), rest.count == 2 else {
            fail(scannerUsage)
            return 0  // never block mail on a set-up mistake
        }
        let (status, err) = QmailHelpers.envelopeScanner(env, sender: rest[0], recipient: rest[1],
                                                         ask: { try client.ask($0) })
        if let err { write(2, err) }
        return status
    }

    // MARK: tcpserver wrapper

    static let wrapUsage = """
        usage: greylag qmail-wrap [--socket unix:/path|HOST:PORT] [--timeout MS] PROGRAM [ARGS...]
        A tcpserver wrapper (like jgreylist): greylists the client at connection time; a client that
        waited long enough is handed to PROGRAM (e.g. /var/qmail/bin/qmail-smtpd). Reads JGREYLIST,
        JGREYLIST_NOREV, JGREYLIST_HOLDTIME, JGREYLIST_TIMEOUT, JGREYLIST_BY_IP, JGREYLIST_LOG_SMTP
        (or GREYLAG_WRAP, GREYLAG_WRAP_NOREV, GREYLAG_WRAP_HOLDTIME, ...). Asks the greylag daemon (default
        \(defaultSocket), or $GREYLAG_SOCKET) on a listener of policy.helper_listen: only there does the
        hold time count.
        """

    static func wrap(_ args: [String]) -> Int32 {
        guard let (client, program) = common(args, usage: wrapUsage), !program.isEmpty else {
            fail(wrapUsage)
            return 111
        }
        let options = QmailHelpers.WrapOptions(env)
        for problem in options.problems { write(2, "greylag qmail-wrap: \(problem)\n") }
        let (decision, err) = QmailHelpers.wrap(env, options: options, ask: { try client.ask($0) })
        if let err { write(2, err) }
        if decision == .exec {
            execute(program)
            write(1, "421 4.3.0 greylag cannot start \(program[0])\r\n")
            return 111
        }
        hold(HoldingSMTP(hostname: hostname(), decision: decision), options: options)
        return 0
    }

    static func execute(_ program: [String]) {
        var cArgs: [UnsafeMutablePointer<CChar>?] = program.map { strdup($0) }
        cArgs.append(nil)
        execvp(program[0], &cArgs)
        fail("greylag qmail-wrap: cannot run \(program[0]): \(String(cString: strerror(errno)))")
    }

    static func hostname() -> String {
        if let h = env("TCPLOCALHOST"), !h.isEmpty { return h }
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Speaks the holding SMTP dialogue on standard input and output.
    static func hold(_ smtp: HoldingSMTP, options: QmailHelpers.WrapOptions) {
        let client = QmailHelpers.clientAddress(env)
        func say(_ text: String) {
            write(1, text)
            if options.logSMTP { write(2, "greylag qmail-wrap \(client) > \(text)") }
        }
        say(smtp.greeting)
        var line: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var p = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, options.timeout * 1000)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 {
                say(smtp.timeoutReply)
                return
            }
            let n = read(0, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            for byte in buffer[0..<n] {
                if byte == 10 {
                    let text = String(decoding: line, as: UTF8.self)
                    line.removeAll(keepingCapacity: true)
                    if options.logSMTP { write(2, "greylag qmail-wrap \(client) < \(text)\n") }
                    let (reply, close) = smtp.reply(to: text)
                    say(reply)
                    if close { return }
                } else if line.count < 1000 {
                    line.append(byte)
                } else {
                    say("500 5.5.2 line too long\r\n")
                    return
                }
            }
        }
    }
}
