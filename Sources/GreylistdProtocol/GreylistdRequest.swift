import GreylagCore

/// One request on greylistd's socket (greylistd 0.9, `/usr/sbin/greylistd`,
/// and its client `greylist(1)`), parsed without I/O.
///
/// Grammar, as greylistd reads it: the request is the client's bytes up to
/// the end of its write (greylistd does one `recv(16384)`; Exim's
/// `readsocket` half-closes after writing, `greylist(1)` neither half-closes
/// nor ends with a newline), lower-cased and split at white space:
///
///     request = [command] *("-" option | "--" option) *data-word
///     command = "update" | "check" | "status" | "add" | "delete" | "stats"
///             | "mrtg" | "list" | "save" | "reload" | "clear"
///
/// A first word that is no command is data, and the command is `update`:
/// so `--grey IP SENDER RCPT`, Debian's Exim ACL request, is `update` with
/// the option `grey`. `update` answers the state (`white`, `grey`, `black`)
/// and records the attempt; with a state option it answers `true` or
/// `false` (is the data in that state, after this attempt). `check` is the
/// same without recording; `status` answers `unseen` for unknown data. An
/// error is answered `error: TEXT`.
public struct GreylistdRequest: Sendable, Hashable {
    /// greylistd's commands (`do_*` functions of the daemon).
    public enum Command: String, Sendable, Hashable, CaseIterable {
        case update, check, status, add, delete, stats, mrtg, list, save, reload, clear
    }

    /// The three states greylistd keeps.
    public enum State: String, Sendable, Hashable, CaseIterable {
        case white, grey, black
    }

    public var command: Command
    /// The option words without their dashes, in order (`grey` for `--grey`).
    public var options: [String]
    /// The data words, lower-cased.
    public var words: [String]

    public init(command: Command, options: [String] = [], words: [String] = []) {
        self.command = command
        self.options = options
        self.words = words
    }

    /// The most bytes a request may have: greylistd reads one `recv(16384)`.
    public static let maxBytes = 16_384

    /// The longest data word greylag takes (a store column holds 512 bytes).
    public static let maxWordBytes = 512

    /// A request that cannot be answered, with greylistd's error text.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
        /// The answer line: `error: TEXT`, as greylistd writes it.
        public var answer: String { "error: \(message)" }
    }

    /// Parses the bytes of one request. NUL and control bytes other than
    /// white space, and bytes that are not UTF-8, are refused: greylistd
    /// would read them as '?' and hash a key no MTA sends again.
    public static func parse(_ bytes: some Collection<UInt8>) throws(Failure) -> GreylistdRequest {
        guard bytes.count <= maxBytes else { throw Failure("request longer than \(maxBytes) bytes") }
        for b in bytes where b < 0x20 || b == 0x7F {
            guard b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0B || b == 0x0C else {
                throw Failure("request contains the control byte 0x\(String(b, radix: 16, uppercase: true))")
            }
        }
        guard let text = String(validating: Array(bytes), as: UTF8.self) else {
            throw Failure("request is not UTF-8 text")
        }
        var words = text.lowercased().split(whereSeparator: { $0.isWhitespace }).map(String.init)
        guard !words.isEmpty else { throw Failure("No data received") }
        var command = Command.update
        if let c = Command(rawValue: words[0]) {
            command = c
            words.removeFirst()
        }
        var options: [String] = []
        while let first = words.first, first.hasPrefix("-") {
            options.append(String(first.drop(while: { $0 == "-" })))
            words.removeFirst()
        }
        for w in words where w.utf8.count > maxWordBytes {
            throw Failure("data word longer than \(maxWordBytes) bytes")
        }
        return GreylistdRequest(command: command, options: options, words: words)
    }

    /// The state an `update`/`check` option names, nil without an option;
    /// greylistd looks at the first option only.
    public func truthTest() throws(Failure) -> State? {
        guard let first = options.first else { return nil }
        guard let s = State(rawValue: first) else { throw Failure("'\(first)' is not a known state") }
        return s
    }

    /// The list `add` puts data in: the first option, white without one.
    public func addState() throws(Failure) -> State {
        guard let first = options.first else { return .white }
        guard let s = State(rawValue: first) else { throw Failure("No such list: '\(first)'") }
        return s
    }

    /// Whether the command changes greylistd's state beyond recording an
    /// attempt (`add`, `delete`, `clear`, `reload`), or shows all data
    /// (`list`): these need the daemon's authority.
    public var needsAuthority: Bool {
        switch command {
        case .add, .delete, .clear, .reload, .list: return true
        case .update, .check, .status, .stats, .mrtg, .save: return false
        }
    }

    /// The answer to `update`/`check` for `state`: the state itself, or
    /// `true`/`false` against `test`.
    public static func answer(_ state: State, test: State?) -> String {
        guard let test else { return state.rawValue }
        return state == test ? "true" : "false"
    }

    /// greylistd's state for a verdict: pass is white, defer grey, reject black.
    public static func state(of action: Verdict.Action) -> State {
        switch action {
        case .pass: return .white
        case .defer: return .grey
        case .reject: return .black
        }
    }
}
