import Foundation
import GreylagCore

/// One message of a replay trace: who sends it to whom, and every attempt
/// its sender would make until greylag accepts it or the sender gives up.
/// A trace is JSON Lines, one message per line (docs/replay.md).
public struct TraceMessage: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        case legit, spam
    }

    /// A name for reports and errors; the line number when absent.
    public var id: String
    /// Only for the report: greylag never sees it.
    public var kind: Kind
    /// The envelope sender; empty for the null sender.
    public var sender: String
    public var recipients: [String]
    /// In time order; the replayer stops at the first that is accepted.
    public var attempts: [TraceAttempt]

    public init(id: String, kind: Kind, sender: String, recipients: [String], attempts: [TraceAttempt]) {
        self.id = id
        self.kind = kind
        self.sender = sender
        self.recipients = recipients
        self.attempts = attempts
    }
}

/// One delivery attempt: when, from which client, and what DNS says about it.
public struct TraceAttempt: Sendable, Hashable, Codable {
    /// Seconds from the start of the trace.
    public var at: Int64
    public var client: String
    /// The client's name as the MTA would send it; empty when unknown.
    public var name: String
    public var helo: String
    /// The SPF authorisation when SPF said `pass`: the domain asked about
    /// and the mechanism that matched (`ip4:… in include.example`).
    public var spf: SPFAuthorization?
    /// The DNS list zones that list this client, sender or HELO name; the
    /// weights come from the configuration replayed.
    public var zones: [String]
    public var reverse: Reverse
    /// The client's name looks dynamic (dial-up, cable, DSL pools).
    public var dynamic: Bool

    public enum Reverse: String, Sendable, Hashable, Codable, CaseIterable {
        case confirmed, unconfirmed, absent, unchecked
    }

    public init(at: Int64, client: String, name: String = "", helo: String = "", spf: SPFAuthorization? = nil,
                zones: [String] = [], reverse: Reverse = .unchecked, dynamic: Bool = false) {
        self.at = at
        self.client = client
        self.name = name
        self.helo = helo
        self.spf = spf
        self.zones = zones
        self.reverse = reverse
        self.dynamic = dynamic
    }

    /// The facts `Engine.screen` gets, with each zone weighed as `weights`
    /// says; zones the configuration does not list are not asked, so they
    /// do not count.
    public func facts(weights: [String: Int]) -> DNSFacts {
        let listings = zones.compactMap { z in weights[z].map { ZoneListing(zone: z, weight: $0) } }
        let reverseName: ReverseName
        switch reverse {
        case .confirmed: reverseName = .confirmed(name)
        case .unconfirmed: reverseName = .unconfirmed
        case .absent: reverseName = .absent
        case .unchecked: reverseName = .notChecked
        }
        return DNSFacts(spf: spf, listings: listings, reverseName: reverseName, dynamicName: dynamic)
    }
}

extension SPFAuthorization: Codable {
    enum CodingKeys: String, CodingKey { case domain, mechanism }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try TraceLimits.onlyKeys(decoder, ["domain", "mechanism"])
        let domain = try TraceLimits.text(c.decode(String.self, forKey: .domain), "spf.domain", max: TraceLimits.maxName)
        guard !domain.isEmpty else { throw TraceError.invalid("spf.domain is empty") }
        let mechanism = try TraceLimits.text(c.decodeIfPresent(String.self, forKey: .mechanism) ?? "", "spf.mechanism",
                                             max: TraceLimits.maxName * 2)
        self.init(domain: domain.lowercased(), mechanism: mechanism)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(domain, forKey: .domain)
        if !mechanism.isEmpty { try c.encode(mechanism, forKey: .mechanism) }
    }
}

/// What a trace may hold: every size is bounded, so a hostile trace costs
/// bounded time and memory.
public enum TraceLimits {
    public static let maxLineBytes = 65_536
    public static let maxMessages = 1_000_000
    public static let maxRecipients = 100
    public static let maxAttempts = 100
    /// Attempts of all messages together (the replay sorts them all).
    public static let maxTotalAttempts = 10_000_000
    /// Attempts times recipients of all messages together: the most
    /// decisions a replay can ask per configuration.
    public static let maxTotalDecisions = 50_000_000
    public static let maxZones = 32
    public static let maxAddress = 512
    public static let maxName = 255
    /// Ten years of seconds: attempt times lie within.
    public static let maxTime: Int64 = 10 * 366 * 86_400

    static func text(_ s: String, _ key: String, max: Int) throws -> String {
        guard s.utf8.count <= max else { throw TraceError.invalid("\(key) is longer than \(max) bytes") }
        guard !s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw TraceError.invalid("\(key) holds a control character")
        }
        return s
    }

    static func onlyKeys(_ decoder: any Decoder, _ known: Set<String>) throws {
        let all = try decoder.container(keyedBy: AnyKey.self)
        if let unknown = all.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
            throw TraceError.invalid("unknown key \"\(unknown.prefix(40))\" (known: \(known.sorted().joined(separator: ", ")))")
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// A trace line that cannot be replayed.
public enum TraceError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    /// The line (from 1) and what is wrong with it.
    case line(Int, String)

    public var description: String {
        switch self {
        case .invalid(let m): return m
        case .line(let n, let m): return "line \(n): \(m)"
        }
    }
}

extension TraceMessage {
    enum CodingKeys: String, CodingKey { case id, kind, sender, recipients, attempts }

    public init(from decoder: any Decoder) throws {
        try TraceLimits.onlyKeys(decoder, ["id", "kind", "sender", "recipients", "attempts"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try TraceLimits.text(c.decodeIfPresent(String.self, forKey: .id) ?? "", "id", max: TraceLimits.maxName)
        kind = try c.decode(Kind.self, forKey: .kind)
        sender = try TraceLimits.text(c.decode(String.self, forKey: .sender), "sender", max: TraceLimits.maxAddress)
        recipients = try c.decode([String].self, forKey: .recipients)
        guard (1...TraceLimits.maxRecipients).contains(recipients.count) else {
            throw TraceError.invalid("recipients: between 1 and \(TraceLimits.maxRecipients) needed, not \(recipients.count)")
        }
        for r in recipients {
            _ = try TraceLimits.text(r, "recipients", max: TraceLimits.maxAddress)
            guard !r.isEmpty else { throw TraceError.invalid("recipients: an empty recipient") }
        }
        attempts = try c.decode([TraceAttempt].self, forKey: .attempts)
        guard (1...TraceLimits.maxAttempts).contains(attempts.count) else {
            throw TraceError.invalid("attempts: between 1 and \(TraceLimits.maxAttempts) needed, not \(attempts.count)")
        }
        for (a, b) in zip(attempts, attempts.dropFirst()) where b.at < a.at {
            throw TraceError.invalid("attempts: not in time order (\(b.at) after \(a.at))")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if !id.isEmpty { try c.encode(id, forKey: .id) }
        try c.encode(kind, forKey: .kind)
        try c.encode(sender, forKey: .sender)
        try c.encode(recipients, forKey: .recipients)
        try c.encode(attempts, forKey: .attempts)
    }
}

extension TraceAttempt {
    enum CodingKeys: String, CodingKey { case at, client, name, helo, spf, zones, reverse, dynamic }

    public init(from decoder: any Decoder) throws {
        try TraceLimits.onlyKeys(decoder, ["at", "client", "name", "helo", "spf", "zones", "reverse", "dynamic"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        at = try c.decode(Int64.self, forKey: .at)
        guard (0...TraceLimits.maxTime).contains(at) else {
            throw TraceError.invalid("attempts.at: \(at) is not between 0 and \(TraceLimits.maxTime) seconds")
        }
        client = try TraceLimits.text(c.decode(String.self, forKey: .client), "attempts.client", max: 64)
        guard IPAddress(client) != nil else {
            throw TraceError.invalid("attempts.client: \"\(client)\" is not an IPv4 or IPv6 address")
        }
        name = try TraceLimits.text(c.decodeIfPresent(String.self, forKey: .name) ?? "", "attempts.name", max: TraceLimits.maxName)
        helo = try TraceLimits.text(c.decodeIfPresent(String.self, forKey: .helo) ?? "", "attempts.helo", max: TraceLimits.maxName)
        spf = try c.decodeIfPresent(SPFAuthorization.self, forKey: .spf)
        zones = try c.decodeIfPresent([String].self, forKey: .zones) ?? []
        guard zones.count <= TraceLimits.maxZones else {
            throw TraceError.invalid("attempts.zones: more than \(TraceLimits.maxZones)")
        }
        zones = try zones.map { try TraceLimits.text($0, "attempts.zones", max: TraceLimits.maxName).lowercased() }
        reverse = try c.decodeIfPresent(Reverse.self, forKey: .reverse) ?? .unchecked
        dynamic = try c.decodeIfPresent(Bool.self, forKey: .dynamic) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(at, forKey: .at)
        try c.encode(client, forKey: .client)
        if !name.isEmpty { try c.encode(name, forKey: .name) }
        if !helo.isEmpty { try c.encode(helo, forKey: .helo) }
        try c.encodeIfPresent(spf, forKey: .spf)
        if !zones.isEmpty { try c.encode(zones, forKey: .zones) }
        if reverse != .unchecked { try c.encode(reverse, forKey: .reverse) }
        if dynamic { try c.encode(dynamic, forKey: .dynamic) }
    }
}

/// Reads a trace as it arrives, line by line: memory holds one line (at
/// most `TraceLimits.maxLineBytes`) and the messages read so far.
public struct TraceParser {
    public private(set) var messages: [TraceMessage] = []
    private var lineNumber = 0
    private var line: [UInt8] = []
    private var tooLong = false
    private var attempts = 0
    private var decisions = 0
    private let maxAttempts: Int
    private let maxDecisions: Int

    /// The totals default to `TraceLimits`'.
    public init(maxTotalAttempts: Int = TraceLimits.maxTotalAttempts,
                maxTotalDecisions: Int = TraceLimits.maxTotalDecisions) {
        maxAttempts = maxTotalAttempts
        maxDecisions = maxTotalDecisions
    }

    /// Reads more of the trace; throws at the first line that cannot be replayed.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws {
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                try endLine()
            } else if line.count < TraceLimits.maxLineBytes {
                line.append(byte)
            } else {
                tooLong = true
            }
        }
    }

    /// The end of the trace: a last line without a newline is read too.
    public mutating func finish() throws -> [TraceMessage] {
        if !line.isEmpty || tooLong { try endLine() }
        return messages
    }

    private mutating func endLine() throws {
        lineNumber += 1
        defer { line.removeAll(keepingCapacity: true); tooLong = false }
        if tooLong {
            throw TraceError.line(lineNumber, "longer than \(TraceLimits.maxLineBytes) bytes")
        }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { return }
        guard messages.count < TraceLimits.maxMessages else {
            throw TraceError.line(lineNumber, "more than \(TraceLimits.maxMessages) messages")
        }
        var message = try Trace.decodeLine(line, lineNumber)
        attempts += message.attempts.count
        decisions += message.attempts.count * message.recipients.count
        guard attempts <= maxAttempts else {
            throw TraceError.line(lineNumber, "more than \(maxAttempts) attempts in all")
        }
        guard decisions <= maxDecisions else {
            throw TraceError.line(lineNumber, "more than \(maxDecisions) attempts times recipients in all")
        }
        if message.id.isEmpty { message.id = "line \(lineNumber)" }
        messages.append(message)
    }
}

/// Reads and writes traces.
public enum Trace {
    /// Parses a whole trace; blank lines are skipped. Errors name the line.
    public static func parse(_ data: some Sequence<UInt8>) throws -> [TraceMessage] {
        var parser = TraceParser()
        try parser.feed(data)
        return try parser.finish()
    }

    /// Reads a trace file (`-` for standard input), a megabyte at a time.
    public static func read(path: String) throws -> [TraceMessage] {
        let handle: FileHandle
        if path == "-" {
            handle = .standardInput
        } else {
            var directory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &directory), directory.boolValue {
                throw TraceError.invalid("is a directory")
            }
            guard let h = FileHandle(forReadingAtPath: path) else { throw TraceError.invalid("cannot be opened") }
            handle = h
        }
        defer { if path != "-" { try? handle.close() } }
        var parser = TraceParser()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            try parser.feed(chunk)
        }
        return try parser.finish()
    }

    static func decodeLine(_ line: [UInt8], _ number: Int) throws -> TraceMessage {
        do {
            return try JSONDecoder().decode(TraceMessage.self, from: Data(line))
        } catch let e as TraceError {
            throw TraceError.line(number, e.description)
        } catch let e as DecodingError {
            throw TraceError.line(number, describe(e))
        } catch {
            throw TraceError.line(number, "not a JSON object")
        }
    }

    static func describe(_ e: DecodingError) -> String {
        func path(_ c: [any CodingKey]) -> String {
            c.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
        }
        switch e {
        case .keyNotFound(let key, let ctx):
            let at = path(ctx.codingPath)
            return "missing key \"\(key.stringValue)\"" + (at.isEmpty ? "" : " in \(at)")
        case .typeMismatch(let type, let ctx):
            return "\(path(ctx.codingPath).ifEmpty("the line")): expected \(typeName(type))"
        case .valueNotFound(let type, let ctx):
            return "\(path(ctx.codingPath).ifEmpty("the line")): expected \(typeName(type)), found null"
        case .dataCorrupted(let ctx):
            if let underlying = ctx.underlyingError as? TraceError { return underlying.description }
            if ctx.codingPath.isEmpty { return "not valid JSON" }
            return "\(path(ctx.codingPath)): invalid value"
        @unknown default:
            return "cannot be read"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int64.Type, is Int.Type: return "an integer"
        case is Bool.Type: return "true or false"
        case is [String].Type, is [TraceAttempt].Type: return "an array"
        default: return "an object"
        }
    }

    /// One message as a trace line (no newline).
    public static func line(_ message: TraceMessage) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these value types cannot fail.
        return String(decoding: (try? encoder.encode(message)) ?? Data(), as: UTF8.self)
    }
}

extension String {
    fileprivate func ifEmpty(_ other: String) -> String { isEmpty ? other : self }
}
