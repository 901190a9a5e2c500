/// A regular expression engine whose matching time is linear in the size of
/// the pattern times the length of the subject, whatever either contains.
///
/// List regexes are written by administrators but matched against text a
/// remote SMTP client chooses (HELO names, sender addresses), so a
/// backtracking engine would let a peer stall the daemon with a subject
/// built against a pattern such as `^(a+)+$`. This engine parses the Perl
/// subset that list files use, compiles it to a Thompson NFA and runs the
/// NFA as a set of states over the subject's Unicode scalars: every state is
/// visited at most once per position, and nothing is ever retried.
///
/// Supported: literals and escapes (`\. \\ \/ \- \t \n \r \f \e \a \xHH
/// \x{HHHH}`), `.` (anything but a newline), classes `[...]` / `[^...]` with
/// ranges, `\d \w \s \D \W \S` inside and outside classes, anchors `^ $ \A
/// \z \Z \b \B`, groups `( )`, `(?: )`, named groups, alternation `|`,
/// quantifiers `* + ? {n} {n,} {n,m} {,m}` and their lazy forms, and the
/// inline option `(?i)` (matching is always case-insensitive). Features
/// that cannot run in linear time (backreferences, lookaround, atomic
/// groups, possessive quantifiers, recursion, conditionals) and options
/// that would change the meaning of the text are refused when the pattern
/// is compiled, naming the feature. Counts are bounded by `maxCount` and
/// the compiled program by `maxProgramSize`, so memory is bounded too.
struct BoundedRegex: Sendable {
    /// The largest count allowed in `{n,m}`.
    static let maxCount = 1000
    /// The largest compiled program, in instructions.
    static let maxProgramSize = 10_000
    /// The longest pattern, in Unicode scalars.
    static let maxSourceLength = 10_000
    /// The deepest nesting of groups.
    static let maxDepth = 100

    private let program: [Instruction]
    private let sets: [CharSet]
    /// Whether the pattern can only match at the start of the subject.
    private let anchoredAtStart: Bool

    init(_ source: String) throws(ListSyntaxError) {
        let scalars = Array(source.unicodeScalars)
        guard scalars.count <= Self.maxSourceLength else {
            throw ListSyntaxError("regular expression is longer than \(Self.maxSourceLength) characters")
        }
        var parser = Parser(scalars)
        let node = try parser.parse()
        let size = node.programSize
        guard size <= Self.maxProgramSize else {
            throw ListSyntaxError("regular expression is too large: it would need more than \(Self.maxProgramSize) "
                + "NFA states (large {n,m} counts multiply the size of what they repeat)")
        }
        var compiler = Compiler()
        compiler.program.reserveCapacity(size + 1)
        compiler.emit(node)
        compiler.program.append(.match)
        program = compiler.program
        sets = compiler.sets
        anchoredAtStart = node.anchoredAtStart
    }

    /// Whether the expression matches somewhere in `subject`, ignoring case.
    func matches(_ subject: String) -> Bool {
        let text = Array(subject.unicodeScalars)
        let n = text.count
        var marks = [Int](repeating: -1, count: program.count)
        var current: [Int] = []
        var next: [Int] = []
        var stack: [Int] = []
        current.reserveCapacity(program.count)
        next.reserveCapacity(program.count)

        // Adds the state `pc` and every state reachable from it without
        // consuming input to `list`, as seen at position `pos`. Returns
        // true when the match state is reached.
        func add(_ pc: Int, _ pos: Int, to list: inout [Int]) -> Bool {
            stack.append(pc)
            while let pc = stack.popLast() {
                guard marks[pc] != pos else { continue }
                marks[pc] = pos
                switch program[pc] {
                case .match:
                    stack.removeAll(keepingCapacity: true)
                    return true
                case .jump(let to):
                    stack.append(to)
                case .split(let first, let second):
                    stack.append(second)
                    stack.append(first)
                case .assert(let kind):
                    if Self.holds(kind, text, pos) { stack.append(pc + 1) }
                case .char, .any, .set:
                    list.append(pc)
                }
            }
            return false
        }

        var pos = 0
        while true {
            if pos == 0 || !anchoredAtStart {
                if add(0, pos, to: &current) { return true }
            }
            if pos == n || current.isEmpty && anchoredAtStart { return false }
            let c = text[pos]
            let folded = Self.fold(c)
            for pc in current {
                let step: Bool
                switch program[pc] {
                case .char(let x): step = folded == x
                case .any: step = c != "\n"
                case .set(let i): step = sets[i].containsIgnoringCase(c)
                default: step = false
                }
                if step && add(pc + 1, pos + 1, to: &next) { return true }
            }
            swap(&current, &next)
            next.removeAll(keepingCapacity: true)
            pos += 1
        }
    }

    private static func holds(_ kind: Assertion, _ text: [Unicode.Scalar], _ pos: Int) -> Bool {
        let n = text.count
        switch kind {
        case .start: return pos == 0
        case .end: return pos == n
        case .endOrFinalNewline: return pos == n || (pos == n - 1 && text[pos] == "\n")
        case .wordBoundary, .notWordBoundary:
            let before = pos > 0 && CharSet.isWord(text[pos - 1])
            let after = pos < n && CharSet.isWord(text[pos])
            return (before != after) == (kind == .wordBoundary)
        }
    }

    /// The simple lower-case form of a scalar, or the scalar itself when it
    /// has none or its lower case is longer than one scalar.
    static func fold(_ c: Unicode.Scalar) -> Unicode.Scalar {
        if c.value < 0x80 {
            return c.value >= 0x41 && c.value <= 0x5A ? Unicode.Scalar(UInt8(c.value + 0x20)) : c
        }
        let lower = c.properties.lowercaseMapping.unicodeScalars
        return lower.count == 1 ? lower.first! : c
    }

    static func upper(_ c: Unicode.Scalar) -> Unicode.Scalar {
        if c.value < 0x80 {
            return c.value >= 0x61 && c.value <= 0x7A ? Unicode.Scalar(UInt8(c.value - 0x20)) : c
        }
        let up = c.properties.uppercaseMapping.unicodeScalars
        return up.count == 1 ? up.first! : c
    }
}

// MARK: - Program

enum Assertion: Sendable, Equatable {
    case start, end, endOrFinalNewline, wordBoundary, notWordBoundary
}

private enum Instruction: Sendable {
    case char(Unicode.Scalar)  // folded
    case any                   // anything but "\n"
    case set(Int)
    case split(Int, Int)
    case jump(Int)
    case assert(Assertion)
    case match
}

/// A character class: ranges and the shorthand classes, maybe negated.
struct CharSet: Sendable {
    enum Shorthand: Sendable { case digit, word, space }
    var ranges: [ClosedRange<UInt32>] = []
    var shorthands: [(kind: Shorthand, negated: Bool)] = []
    var negated = false
    /// Case-insensitive membership of the ASCII scalars, bit per scalar.
    private var asciiLow: UInt64 = 0
    private var asciiHigh: UInt64 = 0

    static func isWord(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 {
            return (c.value >= 0x30 && c.value <= 0x39) || (c.value >= 0x41 && c.value <= 0x5A)
                || (c.value >= 0x61 && c.value <= 0x7A) || c == "_"
        }
        let p = c.properties
        return p.isAlphabetic || p.generalCategory == .decimalNumber || p.generalCategory == .nonspacingMark
            || p.generalCategory == .spacingMark || p.generalCategory == .connectorPunctuation
    }

    static func isDigit(_ c: Unicode.Scalar) -> Bool {
        c.value < 0x80 ? (c.value >= 0x30 && c.value <= 0x39) : c.properties.generalCategory == .decimalNumber
    }

    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        c.value < 0x80 ? (c == " " || (c.value >= 0x09 && c.value <= 0x0D)) : c.properties.isWhitespace
    }

    static func has(_ kind: Shorthand, _ c: Unicode.Scalar) -> Bool {
        switch kind {
        case .digit: return isDigit(c)
        case .word: return isWord(c)
        case .space: return isSpace(c)
        }
    }

    /// Exact membership, case counted.
    func containsExactly(_ c: Unicode.Scalar) -> Bool {
        var found = ranges.contains { $0.contains(c.value) }
        if !found { found = shorthands.contains { Self.has($0.kind, c) != $0.negated } }
        return found
    }

    /// Membership ignoring case: the scalar, its lower or its upper case is
    /// in the class (and the class is not negated), or none is and it is.
    func containsIgnoringCase(_ c: Unicode.Scalar) -> Bool {
        if c.value < 64 { return asciiLow & (1 << UInt64(c.value)) != 0 }
        if c.value < 128 { return asciiHigh & (1 << UInt64(c.value - 64)) != 0 }
        return slowContains(c)
    }

    private func slowContains(_ c: Unicode.Scalar) -> Bool {
        let inside = containsExactly(c) || containsExactly(BoundedRegex.fold(c)) || containsExactly(BoundedRegex.upper(c))
        return inside != negated
    }

    /// Fills the ASCII bitmap; called once the class is complete.
    mutating func finish() {
        asciiLow = 0
        asciiHigh = 0
        for v in UInt8(0)..<128 where slowContains(Unicode.Scalar(v)) {
            if v < 64 { asciiLow |= 1 << UInt64(v) } else { asciiHigh |= 1 << UInt64(v - 64) }
        }
    }
}

// MARK: - Syntax tree

private indirect enum Node {
    case empty
    case char(Unicode.Scalar)
    case any
    case set(CharSet)
    case assert(Assertion)
    case concat([Node])
    case alternation([Node])
    case repetition(Node, min: Int, max: Int?)

    /// Instructions the node compiles to, saturating well above the limit.
    var programSize: Int {
        let cap = BoundedRegex.maxProgramSize * 4
        func add(_ a: Int, _ b: Int) -> Int { min(cap, a + b) }
        func mul(_ a: Int, _ b: Int) -> Int { a == 0 || b == 0 ? 0 : (a > cap / b ? cap : min(cap, a * b)) }
        switch self {
        case .empty: return 0
        case .char, .any, .set, .assert: return 1
        case .concat(let nodes): return nodes.reduce(0) { add($0, $1.programSize) }
        case .alternation(let nodes):
            return add(nodes.reduce(0) { add($0, $1.programSize) }, mul(2, nodes.count - 1))
        case .repetition(let node, let lo, let hi):
            let size = node.programSize
            let fixed = mul(lo, size)
            if let hi { return add(fixed, mul(hi - lo, add(size, 1))) }
            return add(fixed, add(size, 2))
        }
    }

    /// Whether every match must start at position 0 (`^` or `\A` first).
    var anchoredAtStart: Bool {
        switch self {
        case .assert(.start): return true
        case .concat(let nodes):
            for node in nodes {
                if node.anchoredAtStart { return true }
                if case .empty = node { continue }
                return false
            }
            return false
        case .alternation(let nodes): return !nodes.isEmpty && nodes.allSatisfy(\.anchoredAtStart)
        case .repetition(let node, let lo, _): return lo > 0 && node.anchoredAtStart
        default: return false
        }
    }
}

private struct Compiler {
    var program: [Instruction] = []
    var sets: [CharSet] = []

    mutating func emit(_ node: Node) {
        switch node {
        case .empty: break
        case .char(let c): program.append(.char(BoundedRegex.fold(c)))
        case .any: program.append(.any)
        case .set(let set):
            sets.append(set)
            program.append(.set(sets.count - 1))
        case .assert(let kind): program.append(.assert(kind))
        case .concat(let nodes): for n in nodes { emit(n) }
        case .alternation(let nodes):
            // split L1, next; L1: a; jump end; next: split L2, ... ; last
            var jumps: [Int] = []
            for (i, n) in nodes.enumerated() {
                if i < nodes.count - 1 {
                    let split = program.count
                    program.append(.split(split + 1, -1))
                    emit(n)
                    jumps.append(program.count)
                    program.append(.jump(-1))
                    program[split] = .split(split + 1, program.count)
                } else {
                    emit(n)
                }
            }
            for j in jumps { program[j] = .jump(program.count) }
        case .repetition(let n, let lo, let hi):
            for _ in 0..<lo { emit(n) }
            if let hi {
                // Each optional copy may be skipped to the end.
                var splits: [Int] = []
                for _ in lo..<hi {
                    splits.append(program.count)
                    program.append(.split(program.count + 1, -1))
                    emit(n)
                }
                for s in splits { program[s] = .split(s + 1, program.count) }
            } else {
                let loop = program.count
                program.append(.split(loop + 1, -1))
                emit(n)
                program.append(.jump(loop))
                program[loop] = .split(loop + 1, program.count)
            }
        }
    }
}

// MARK: - Parser

private struct Parser {
    let s: [Unicode.Scalar]
    var i = 0
    var depth = 0

    init(_ s: [Unicode.Scalar]) { self.s = s }

    var atEnd: Bool { i >= s.count }
    func peek(_ offset: Int = 0) -> Unicode.Scalar? { i + offset < s.count ? s[i + offset] : nil }

    func error(_ message: String) -> ListSyntaxError {
        ListSyntaxError("bad regular expression /\(String(String.UnicodeScalarView(s)))/: \(message)")
    }

    func unsupported(_ feature: String) -> ListSyntaxError {
        error("\(feature) not supported in list regexes")
    }

    mutating func parse() throws(ListSyntaxError) -> Node {
        let node = try parseAlternation()
        if !atEnd { throw error("unmatched ) at offset \(i)") }
        return node
    }

    mutating func parseAlternation() throws(ListSyntaxError) -> Node {
        var branches = [try parseConcat()]
        while peek() == "|" {
            i += 1
            branches.append(try parseConcat())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    mutating func parseConcat() throws(ListSyntaxError) -> Node {
        var items: [Node] = []
        while let c = peek(), c != "|", c != ")" {
            let atom = try parseAtom()
            items.append(try parseQuantifiers(atom))
        }
        return items.count == 1 ? items[0] : .concat(items)
    }

    mutating func parseQuantifiers(_ atom: Node) throws(ListSyntaxError) -> Node {
        guard let (lo, hi) = try parseQuantifier() else { return atom }
        if peek() == "?" {
            i += 1  // lazy: the same answer for a yes/no match
        } else if peek() == "+" {
            throw unsupported("possessive quantifiers (such as a++) are")
        }
        if try parseQuantifierPeek() {
            throw error("nested quantifier at offset \(i); group the repeated part with (?:...)")
        }
        return .repetition(atom, min: lo, max: hi)
    }

    /// Whether a quantifier starts at the current position.
    mutating func parseQuantifierPeek() throws(ListSyntaxError) -> Bool {
        let save = i
        defer { i = save }
        return try parseQuantifier() != nil
    }

    /// Reads `*`, `+`, `?` or a counted `{...}`; a `{` that does not start
    /// a count is left as a literal, as Perl does.
    mutating func parseQuantifier() throws(ListSyntaxError) -> (Int, Int?)? {
        switch peek() {
        case "*": i += 1; return (0, nil)
        case "+": i += 1; return (1, nil)
        case "?": i += 1; return (0, 1)
        case "{":
            var j = i + 1
            func number() throws(ListSyntaxError) -> Int? {
                var value = 0
                var digits = 0
                while j < s.count, let d = Self.digit(s[j]) {
                    if value <= BoundedRegex.maxCount { value = value * 10 + d }
                    digits += 1
                    j += 1
                }
                return digits == 0 ? nil : value
            }
            let lo = try number()
            var hi: Int?
            var open = false
            if j < s.count && s[j] == "," {
                j += 1
                hi = try number()
                open = hi == nil
            } else {
                hi = lo
            }
            guard j < s.count, s[j] == "}", lo != nil || hi != nil else { return nil }
            let start = i
            i = j + 1
            let low = lo ?? 0
            if low > BoundedRegex.maxCount || (hi ?? 0) > BoundedRegex.maxCount {
                throw error("count in \(String(String.UnicodeScalarView(s[start..<i]))) is above the limit of \(BoundedRegex.maxCount)")
            }
            if let hi, hi < low {
                throw error("count range \(String(String.UnicodeScalarView(s[start..<i]))) has its maximum below its minimum")
            }
            return (low, open ? nil : hi)
        default: return nil
        }
    }

    static func digit(_ c: Unicode.Scalar) -> Int? {
        c.value >= 0x30 && c.value <= 0x39 ? Int(c.value - 0x30) : nil
    }

    static func hexDigit(_ c: Unicode.Scalar) -> UInt32? {
        switch c.value {
        case 0x30...0x39: return c.value - 0x30
        case 0x41...0x46: return c.value - 0x41 + 10
        case 0x61...0x66: return c.value - 0x61 + 10
        default: return nil
        }
    }

    mutating func parseAtom() throws(ListSyntaxError) -> Node {
        let c = s[i]
        switch c {
        case "(": return try parseGroup()
        case "[": return .set(try parseClass())
        case ".": i += 1; return .any
        case "^": i += 1; return .assert(.start)
        case "$": i += 1; return .assert(.endOrFinalNewline)
        case "\\": return try parseEscape()
        case "*", "+", "?":
            throw error("quantifier \(c) at offset \(i) has nothing to repeat")
        case "{":
            if try parseQuantifierPeek() { throw error("quantifier { at offset \(i) has nothing to repeat") }
            i += 1
            return .char(c)
        default:
            i += 1
            return .char(c)
        }
    }

    mutating func parseGroup() throws(ListSyntaxError) -> Node {
        let open = i
        i += 1
        depth += 1
        defer { depth -= 1 }
        guard depth <= BoundedRegex.maxDepth else {
            throw error("groups are nested deeper than \(BoundedRegex.maxDepth)")
        }
        if peek() == "?" {
            i += 1
            switch peek() {
            case ":": i += 1
            case "=", "!": throw unsupported("lookahead (?\(peek()!)...) is")
            case "<" where peek(1) == "=" || peek(1) == "!": throw unsupported("lookbehind (?<\(peek(1)!)...) is")
            case "<", "'", "P" where peek(1) == "<":
                // A named group: a group like any other here.
                if peek() == "P" { i += 1 }
                let close: Unicode.Scalar = peek() == "'" ? "'" : ">"
                i += 1
                let nameStart = i
                while let ch = peek(), ch != close {
                    guard CharSet.isWord(ch) else { throw error("bad group name at offset \(i)") }
                    i += 1
                }
                guard peek() == close, i > nameStart else { throw error("bad group name at offset \(nameStart)") }
                i += 1
            case "P" where peek(1) == "=": throw unsupported("backreferences (?P=name) are")
            case "P" where peek(1) == ">": throw unsupported("recursion (?P>name) is")
            case ">": throw unsupported("atomic groups (?>...) are")
            case "|": throw unsupported("branch reset groups (?|...) are")
            case "(": throw unsupported("conditionals (?(...)...) are")
            case "R", "&", "+": throw unsupported("recursion (?\(peek()!)...) is")
            case "#":
                while let ch = peek(), ch != ")" { i += 1 }
                guard peek() == ")" else { throw error("unterminated comment (?#... at offset \(open)") }
                i += 1
                return .empty
            case let ch? where Self.digit(ch) != nil || ch == "-" && peek(1).flatMap(Self.digit) != nil:
                throw unsupported("recursion (?\(ch)...) is")
            case let ch? where ch.properties.isAlphabetic || ch == "-" || ch == "^":
                // Inline options: only `i` keeps the meaning lists rely on.
                var flags = ""
                while let f = peek(), f != ")" && f != ":" {
                    flags.unicodeScalars.append(f)
                    i += 1
                }
                guard let end = peek() else { throw error("unterminated group at offset \(open)") }
                guard flags.allSatisfy({ $0 == "i" }) else {
                    throw unsupported("inline option (?\(flags)) is")
                }
                i += 1
                if end == ")" { return .empty }
            default:
                throw error("unknown group syntax (?\(peek().map { String($0) } ?? "") at offset \(open)")
            }
        }
        let inner = try parseAlternation()
        guard peek() == ")" else { throw error("missing ) for the group at offset \(open)") }
        i += 1
        return inner
    }

    /// An escape outside a class.
    mutating func parseEscape() throws(ListSyntaxError) -> Node {
        let start = i
        i += 1
        guard let c = peek() else { throw error("trailing backslash") }
        switch c {
        case "A": i += 1; return .assert(.start)
        case "z": i += 1; return .assert(.end)
        case "Z": i += 1; return .assert(.endOrFinalNewline)
        case "b": i += 1; return .assert(.wordBoundary)
        case "B": i += 1; return .assert(.notWordBoundary)
        default:
            i = start
            switch try parseClassEscape(inClass: false) {
            case .scalar(let x): return .char(x)
            case .shorthand(let kind, let negated):
                var set = CharSet()
                set.shorthands = [(kind, negated)]
                set.finish()
                return .set(set)
            }
        }
    }

    enum EscapeValue { case scalar(Unicode.Scalar), shorthand(CharSet.Shorthand, Bool) }

    /// An escape that stands for one character or a shorthand class; `i`
    /// is at the backslash.
    mutating func parseClassEscape(inClass: Bool) throws(ListSyntaxError) -> EscapeValue {
        let start = i
        i += 1
        guard let c = peek() else { throw error("trailing backslash") }
        i += 1
        switch c {
        case "d": return .shorthand(.digit, false)
        case "D": return .shorthand(.digit, true)
        case "w": return .shorthand(.word, false)
        case "W": return .shorthand(.word, true)
        case "s": return .shorthand(.space, false)
        case "S": return .shorthand(.space, true)
        case "t": return .scalar("\t")
        case "n": return .scalar("\n")
        case "r": return .scalar("\r")
        case "f": return .scalar("\u{0C}")
        case "e": return .scalar("\u{1B}")
        case "a": return .scalar("\u{07}")
        case "b" where inClass: return .scalar("\u{08}")
        case "x":
            var value: UInt32 = 0
            if peek() == "{" {
                i += 1
                var digits = 0
                while let ch = peek(), let h = Self.hexDigit(ch) {
                    digits += 1
                    guard digits <= 6 else { throw error("\\x{...} at offset \(start) has too many digits") }
                    value = value * 16 + h
                    i += 1
                }
                guard peek() == "}", digits > 0 else { throw error("bad \\x{...} escape at offset \(start)") }
                i += 1
            } else {
                var digits = 0
                while digits < 2, let ch = peek(), let h = Self.hexDigit(ch) {
                    value = value * 16 + h
                    digits += 1
                    i += 1
                }
                guard digits > 0 else { throw error("bad \\x escape at offset \(start): write \\xHH") }
            }
            guard let scalar = Unicode.Scalar(value) else {
                throw error("\\x escape at offset \(start) is not a Unicode scalar value")
            }
            return .scalar(scalar)
        case "1"..."9": throw unsupported("backreferences (\\\(c)) are")
        case "k", "g": throw unsupported("backreferences (\\\(c)) are")
        case "p", "P": throw unsupported("Unicode property escapes (\\\(c){...}) are")
        case "Q", "E": throw unsupported("quoting with \\Q...\\E is")
        case "K": throw unsupported("\\K is")
        case "G": throw unsupported("\\G is")
        case "0": throw unsupported("octal escapes (\\0) are")
        case "A", "z", "Z", "B", "b": throw error("anchor \\\(c) at offset \(start) cannot be used in a character class")
        default:
            if c.value < 0x80 && (c.properties.isAlphabetic || Self.digit(c) != nil) {
                throw error("unknown escape \\\(c) at offset \(start)")
            }
            return .scalar(c)
        }
    }

    mutating func parseClass() throws(ListSyntaxError) -> CharSet {
        let open = i
        i += 1
        var set = CharSet()
        if peek() == "^" {
            set.negated = true
            i += 1
        }
        var first = true
        while true {
            guard let c = peek() else { throw error("unterminated character class [ at offset \(open)") }
            if c == "]" && !first { i += 1; break }
            first = false
            if c == "[" && (peek(1) == ":" || peek(1) == "=" || peek(1) == ".") {
                throw unsupported("POSIX classes such as [:alpha:] are")
            }
            let low: Unicode.Scalar
            if c == "\\" {
                switch try parseClassEscape(inClass: true) {
                case .shorthand(let kind, let negated):
                    set.shorthands.append((kind, negated))
                    if peek() == "-" && peek(1) != "]" && peek(1) != nil {
                        throw error("a class such as \\d cannot start a range in [...] at offset \(open)")
                    }
                    continue
                case .scalar(let x): low = x
                }
            } else {
                low = c
                i += 1
            }
            // A range, unless the `-` is the last thing in the class.
            if peek() == "-", let after = peek(1), after != "]" {
                i += 1
                let high: Unicode.Scalar
                if after == "\\" {
                    switch try parseClassEscape(inClass: true) {
                    case .shorthand: throw error("a class such as \\d cannot end a range in [...] at offset \(open)")
                    case .scalar(let x): high = x
                    }
                } else {
                    high = after
                    i += 1
                }
                guard low.value <= high.value else {
                    throw error("range \(low)-\(high) in [...] at offset \(open) is out of order")
                }
                set.ranges.append(low.value...high.value)
            } else {
                set.ranges.append(low.value...low.value)
            }
        }
        set.finish()
        return set
    }
}
