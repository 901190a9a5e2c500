#if canImport(Glibc)
import Glibc
#endif

/// `qmail-spp`, `qmail-envelope-scanner` and `qmail-wrap`: run once per
/// recipient or connection, so they use plain system calls and nothing
/// but the Swift runtime. Two executables share this entry: `greylag`
/// dispatches to it before its argument parser and the rest of the
/// program start, and `greylag-qmail`, which links this module only, so
/// that a call does not pay for loading Foundation, NIO and the store.
public enum QmailEntry {
    /// Where the qmail setup of docs/qmail.md has the daemon listen for the helpers
    /// (`policy.helper_listen`): only such a listener honours their attributes.
    public static let defaultSocket = "/run/greylag/policy.sock"

    /// The helpers' names, as the first argument gives them.
    public static let helpers = ["qmail-spp", "qmail-envelope-scanner", "qmail-wrap"]

    /// Runs the helper named by `args[1]` (the rest are its arguments);
    /// nil if it is none. `command` is how usage texts name the program
    /// (`greylag`, `greylag-qmail`).
    public static func run(_ args: [String], command: String = "greylag") -> Int32? {
        guard args.count > 1 else { return nil }
        return run(helper: args[1], Array(args.dropFirst(2)), usageName: command + " " + args[1])
    }

    /// Runs `helper` with `args`; nil if it is no helper's name. `usageName`
    /// is the command its usage text shows (`greylag qmail-spp`).
    public static func run(helper: String, _ args: [String], usageName: String) -> Int32? {
        switch helper {
        case "qmail-spp": return spp(args, usage: { sppUsage(usageName) })
        case "qmail-envelope-scanner": return scanner(args, usage: { scannerUsage(usageName) })
        case "qmail-wrap": return wrap(args, usage: { wrapUsage(usageName) })
        default: return nil
        }
    }

    public static func env(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        return String(cString: p)
    }

    /// Common options; returns the client and the arguments left. `usage`
    /// is made only when needed: a helper's start must stay short.
    static func common(_ args: [String], usage: () -> String,
                       extra: (String, inout [String].Iterator) -> Bool = { _, _ in false }) -> (PolicyClient, [String])? {
        var target = env("GREYLAG_SOCKET") ?? defaultSocket
        var timeout: Int32 = 3000
        var rest: [String] = []
        var it = args.makeIterator()
        while let a = it.next() {
            if !rest.isEmpty { rest.append(a); continue }  // after the first operand, everything is an operand
            switch a {
            case "--socket":
                guard let v = it.next() else { fail(usage()); return nil }
                target = v
            case "--timeout":
                guard let v = it.next(), let ms = Int32(v), ms > 0 else { fail(usage()); return nil }
                timeout = ms
            case "-h", "--help":
                print(usage())
                exit(0)
            default:
                if a.hasPrefix("--") {
                    if !extra(a, &it) { fail("unknown option \(a)\n" + usage()); return nil }
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

    /// Writes all of `text` to `fd` (nothing more on an error but EINTR).
    public static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + sent, $0.count - sent) }
            if n <= 0 { if errno == EINTR { continue }; return }
            sent += n
        }
    }

    // MARK: qmail-spp

    static func sppUsage(_ name: String) -> String {
        let indent = String(repeating: " ", count: "usage: ".count + name.count + 1)
        return """
        usage: \(name) [--socket unix:/path|HOST:PORT] [--timeout MS] [--legacy-text]
        \(indent)[--always | --activation VARIABLE] [--reject-code 553|550]
        A qmail-spp [rcpt] plugin: asks the greylag daemon (default \(defaultSocket), or $GREYLAG_SOCKET;
        a listener of policy.helper_listen) and prints E451 to defer, E553/E550 to refuse, nothing to pass.
        """
    }

    static func spp(_ args: [String], usage: () -> String) -> Int32 {
        var options = QmailHelpers.SPPOptions()
        var bad = false
        guard let (client, rest) = common(args, usage: usage, extra: { a, it in
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
            fail(usage())
            return 120  // qmail answers 451 for a plugin that fails
        }
        let (out, err) = QmailHelpers.spp(env, options: options, ask: { try client.ask($0) })
        if let err { write(2, err) }
        write(1, out)
        return 0
    }

    // MARK: envelope scanner

    static func scannerUsage(_ name: String) -> String { """
        usage: \(name) [--socket unix:/path|HOST:PORT] [--timeout MS] MAILFROM RCPTTO
        The ENVELOPE_SCANNER of the Plesk qmail patch: asks the greylag daemon (default \(defaultSocket),
        or $GREYLAG_SOCKET; a listener of policy.helper_listen); exit 101 to defer, 100 to refuse, 0 to pass.
        """
    }

    static func scanner(_ args: [String], usage: () -> String) -> Int32 {
        guard let (client, rest) = common(args, usage: usage), rest.count == 2 else {
            fail(usage())
            return 0  // never block mail on a set-up mistake
        }
        let (status, err) = QmailHelpers.envelopeScanner(env, sender: rest[0], recipient: rest[1],
                                                         ask: { try client.ask($0) })
        if let err { write(2, err) }
        return status
    }

    // MARK: tcpserver wrapper

    static func wrapUsage(_ name: String) -> String { """
        usage: \(name) [--socket unix:/path|HOST:PORT] [--timeout MS] PROGRAM [ARGS...]
        A tcpserver wrapper (like jgreylist): greylists the client at connection time; a client that
        waited long enough is handed to PROGRAM (e.g. /var/qmail/bin/qmail-smtpd). Reads JGREYLIST,
        JGREYLIST_NOREV, JGREYLIST_HOLDTIME, JGREYLIST_TIMEOUT, JGREYLIST_BY_IP, JGREYLIST_LOG_SMTP
        (or GREYLAG_WRAP, GREYLAG_WRAP_NOREV, GREYLAG_WRAP_HOLDTIME, ...). Asks the greylag daemon (default
        \(defaultSocket), or $GREYLAG_SOCKET) on a listener of policy.helper_listen: only there does the
        hold time count.
        """
    }

    static func wrap(_ args: [String], usage: () -> String) -> Int32 {
        guard let (client, program) = common(args, usage: usage), !program.isEmpty else {
            fail(usage())
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
