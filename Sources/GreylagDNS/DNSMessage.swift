/// The DNS wire format (RFC 1035 section 4, EDNS0 from RFC 6891): a query
/// encoder and a response decoder for what greylag asks.
///
/// The decoder reads hostile bytes: every length is checked against the
/// packet, names are limited to 63-byte labels and 255 bytes, compression
/// pointers must point backwards (so they cannot loop) and a name may follow
/// at most 64 of them, and record counts that lie end the parse with an error
/// instead of a read past the end. Work and memory are linear in the size of
/// the packet, which is at most 65535 bytes.
public enum DNSWire {
    /// The UDP payload size greylag announces in its EDNS0 OPT record (the
    /// size DNS Flag Day 2020 settled on: no IP fragmentation).
    public static let ednsPayloadSize: UInt16 = 1232
    /// Compression pointers one name may follow.
    static let maxPointers = 64

    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        /// The packet ends inside the part named.
        case truncated(String)
        /// A label longer than 63 bytes or a name longer than 255.
        case nameTooLong
        /// A compression pointer that does not point backwards, or too many of them.
        case badPointer
        /// Label type bits 01 or 10 (reserved, or the obsolete extended labels).
        case badLabelType
        /// The RDATA of a record does not fit its type.
        case badRecord(String)
        /// The name given to the encoder is not a domain name.
        case badName(String)

        public var description: String {
            switch self {
            case .truncated(let part): return "the packet ends inside \(part)"
            case .nameTooLong: return "a name longer than 255 bytes or a label longer than 63"
            case .badPointer: return "a compression pointer that does not point backwards"
            case .badLabelType: return "a label of an unknown type"
            case .badRecord(let why): return "a record with bad data: \(why)"
            case .badName(let why): return "not a domain name: \(why)"
            }
        }
    }

    /// Response codes greylag tells apart.
    public enum RCode: Equatable, Sendable {
        case noError, formErr, servFail, nxDomain, notImp, refused
        case other(UInt8)

        init(_ v: UInt8) {
            switch v {
            case 0: self = .noError
            case 1: self = .formErr
            case 2: self = .servFail
            case 3: self = .nxDomain
            case 4: self = .notImp
            case 5: self = .refused
            default: self = .other(v)
            }
        }
    }

    /// One resource record of a response. `data` is nil for types greylag
    /// does not read (their RDATA is skipped, its length checked).
    public struct Record: Equatable, Sendable {
        public var name: String
        public var type: UInt16
        public var `class`: UInt16
        public var ttl: UInt32
        public var data: DNSRecordData?
        /// For SOA: the MINIMUM field (RFC 2308's negative TTL).
        public var soaMinimum: UInt32?
    }

    /// A decoded response.
    public struct Message: Equatable, Sendable {
        public var id: UInt16
        public var isResponse: Bool
        public var opcode: UInt8
        public var authoritative: Bool
        public var truncated: Bool
        public var recursionDesired: Bool
        public var recursionAvailable: Bool
        public var rcode: RCode
        /// The first question (greylag asks one at a time); nil when the count is 0.
        public var question: (name: String, type: UInt16, class: UInt16)?
        public var answers: [Record]
        public var authority: [Record]

        public static func == (a: Message, b: Message) -> Bool {
            a.id == b.id && a.isResponse == b.isResponse && a.opcode == b.opcode
                && a.authoritative == b.authoritative && a.truncated == b.truncated
                && a.recursionDesired == b.recursionDesired && a.recursionAvailable == b.recursionAvailable
                && a.rcode == b.rcode && a.question?.name == b.question?.name && a.question?.type == b.question?.type
                && a.question?.class == b.question?.class && a.answers == b.answers && a.authority == b.authority
        }
    }

    // MARK: Names

    /// A name as greylag compares and shows it: lower-case ASCII letters, no
    /// trailing dot, bytes other than letters, digits, `-` and `_` written
    /// `\DDD` (RFC 1035's presentation form), so that a label holding a dot
    /// cannot pass for two labels.
    static func present(_ labels: [ArraySlice<UInt8>]) -> String {
        var out: [UInt8] = []
        for (i, label) in labels.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ".")) }
            for b in label {
                switch b {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): out.append(b + 32)
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                     UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "*"):
                    out.append(b)
                default:
                    out.append(UInt8(ascii: "\\"))
                    let d = [b / 100, (b / 10) % 10, b % 10]
                    out += d.map { $0 + UInt8(ascii: "0") }
                }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The wire labels of a name as the resolver's callers write it: ASCII,
    /// dot-separated, one trailing dot tolerated. Throws `badName` for an
    /// empty label, a label over 63 bytes, a name over 255 bytes on the
    /// wire, or a byte that is not printable ASCII (greylag asks for names it
    /// built or read from DNS, all in the presentation form above).
    public static func labels(of name: String) throws -> [[UInt8]] {
        var bytes = Array(name.utf8)
        if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        if bytes.isEmpty { throw Error.badName("empty") }
        // 255 bytes on the wire are at most 1020 characters with every byte as \DDD.
        if bytes.count > 1020 { throw Error.badName("longer than 255 bytes") }
        var labels: [[UInt8]] = []
        var label: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            guard b > 0x20 && b < 0x7f else { throw Error.badName("a byte that is not printable ASCII") }
            if b == UInt8(ascii: ".") {
                guard !label.isEmpty else { throw Error.badName("an empty label") }
                labels.append(label)
                label = []
            } else if b == UInt8(ascii: "\\") {
                // \DDD as `present` writes it.
                guard i + 3 < bytes.count, bytes[(i + 1)...(i + 3)].allSatisfy({ (0x30...0x39).contains($0) }) else {
                    throw Error.badName("a backslash not followed by three digits")
                }
                let v = Int(bytes[i + 1] - 0x30) * 100 + Int(bytes[i + 2] - 0x30) * 10 + Int(bytes[i + 3] - 0x30)
                guard v <= 255 else { throw Error.badName("\\\(v) is not a byte") }
                label.append(UInt8(v))
                i += 3
            } else {
                label.append(b)
            }
            guard label.count <= 63 else { throw Error.badName("a label longer than 63 bytes") }
            i += 1
        }
        guard !label.isEmpty else { throw Error.badName("an empty label") }
        labels.append(label)
        guard labels.reduce(1, { $0 + $1.count + 1 }) <= 255 else { throw Error.badName("longer than 255 bytes") }
        return labels
    }

    /// `name` in its canonical presentation form (`labels(of:)` then `present`).
    public static func canonical(_ name: String) throws -> String {
        present(try labels(of: name).map { $0[...] })
    }

    // MARK: Encoding

    /// A query for `name` and `type` (class IN) with RD set and an EDNS0 OPT
    /// record announcing `ednsPayloadSize`.
    public static func query(id: UInt16, name: String, type: UInt16, edns: Bool = true) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        func u16(_ v: UInt16) { out.append(UInt8(v >> 8)); out.append(UInt8(v & 0xff)) }
        u16(id)
        u16(0x0100)  // QR=0, opcode 0, RD=1
        u16(1)  // QDCOUNT
        u16(0)  // ANCOUNT
        u16(0)  // NSCOUNT
        u16(edns ? 1 : 0)  // ARCOUNT
        for label in try labels(of: name) {
            out.append(UInt8(label.count))
            out += label
        }
        out.append(0)
        u16(type)
        u16(1)  // IN
        if edns {
            out.append(0)  // root
            u16(41)  // OPT
            u16(ednsPayloadSize)
            u16(0)  // extended RCODE, version 0
            u16(0)  // flags (no DO)
            u16(0)  // RDLENGTH
        }
        return out
    }

    // MARK: Decoding

    /// Decodes a response; throws `Error` for anything malformed.
    public static func decode(_ bytes: [UInt8]) throws -> Message {
        try bytes.withUnsafeBufferPointer { try decode(UnsafeRawBufferPointer($0)) }
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> Message {
        var r = Reader(bytes: bytes)
        let id = try r.u16("the header")
        let flags = try r.u16("the header")
        let qd = try r.u16("the header")
        let an = try r.u16("the header")
        let ns = try r.u16("the header")
        _ = try r.u16("the header")  // ARCOUNT: the additional section is not read
        var question: (name: String, type: UInt16, class: UInt16)? = nil
        for i in 0..<Int(qd) {
            let name = try r.name()
            let type = try r.u16("a question")
            let cls = try r.u16("a question")
            if i == 0 { question = (present(name), type, cls) }
        }
        var answers: [Record] = []
        for _ in 0..<Int(an) { answers.append(try r.record()) }
        var authority: [Record] = []
        for _ in 0..<Int(ns) { authority.append(try r.record()) }
        return Message(id: id, isResponse: flags & 0x8000 != 0, opcode: UInt8((flags >> 11) & 0xf),
                       authoritative: flags & 0x0400 != 0, truncated: flags & 0x0200 != 0,
                       recursionDesired: flags & 0x0100 != 0, recursionAvailable: flags & 0x0080 != 0,
                       rcode: RCode(UInt8(flags & 0xf)), question: question, answers: answers, authority: authority)
    }

    /// Reads a packet front to back; every read checks its length.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        mutating func u8(_ part: String) throws -> UInt8 {
            guard offset < bytes.count else { throw Error.truncated(part) }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func u16(_ part: String) throws -> UInt16 {
            guard offset + 2 <= bytes.count else { throw Error.truncated(part) }
            defer { offset += 2 }
            return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        }

        mutating func u32(_ part: String) throws -> UInt32 {
            guard offset + 4 <= bytes.count else { throw Error.truncated(part) }
            var v: UInt32 = 0
            for k in 0..<4 { v = v << 8 | UInt32(bytes[offset + k]) }
            offset += 4
            return v
        }

        /// The labels of a (possibly compressed) name at the current offset;
        /// the offset moves past the name's own bytes.
        mutating func name() throws -> [ArraySlice<UInt8>] {
            var labels: [ArraySlice<UInt8>] = []
            var wireLength = 1
            var at = offset
            var jumped = false
            var pointers = 0
            // Pointers must go strictly backwards from the lowest position
            // seen so far, so at most `at` of them, and never in a loop.
            var lowest = offset
            while true {
                guard at < bytes.count else { throw Error.truncated("a name") }
                let length = Int(bytes[at])
                switch length & 0xc0 {
                case 0x00:
                    if length == 0 {
                        if !jumped { offset = at + 1 }
                        return labels
                    }
                    guard at + 1 + length <= bytes.count else { throw Error.truncated("a name") }
                    wireLength += length + 1
                    guard wireLength <= 255 else { throw Error.nameTooLong }
                    labels.append(ArraySlice(bytes[(at + 1)..<(at + 1 + length)]))
                    at += 1 + length
                case 0xc0:
                    guard at + 2 <= bytes.count else { throw Error.truncated("a name") }
                    let target = (length & 0x3f) << 8 | Int(bytes[at + 1])
                    pointers += 1
                    guard target < lowest, pointers <= DNSWire.maxPointers else { throw Error.badPointer }
                    if !jumped { offset = at + 2 }
                    jumped = true
                    lowest = target
                    at = target
                default:
                    throw Error.badLabelType
                }
            }
        }

        /// One resource record; RDATA must lie inside the packet and be read whole.
        mutating func record() throws -> Record {
            let name = present(try self.name())
            let type = try u16("a record")
            let cls = try u16("a record")
            let ttl = try u32("a record")
            let length = Int(try u16("a record"))
            guard offset + length <= bytes.count else { throw Error.truncated("a record's data") }
            let end = offset + length
            var data: DNSRecordData? = nil
            var soaMinimum: UInt32? = nil
            func expect(_ n: Int, _ what: String) throws {
                guard length == n else { throw Error.badRecord("\(what) of \(length) bytes") }
            }
            switch DNSRecordType(rawValue: type) {
            case .a?:
                try expect(4, "an A record")
                data = .a(Array(bytes[offset..<end]))
            case .aaaa?:
                try expect(16, "an AAAA record")
                data = .aaaa(Array(bytes[offset..<end]))
            case .txt?:
                var parts: [[UInt8]] = []
                var at = offset
                while at < end {
                    let n = Int(bytes[at])
                    guard at + 1 + n <= end else { throw Error.badRecord("a TXT string past its record") }
                    parts.append(Array(bytes[(at + 1)..<(at + 1 + n)]))
                    at += 1 + n
                }
                guard !parts.isEmpty else { throw Error.badRecord("a TXT record without strings") }
                data = .txt(parts)
            case .ptr?, .cname?, .ns?:
                let target = try nameInside(end)
                switch DNSRecordType(rawValue: type)! {
                case .ptr: data = .ptr(target)
                case .cname: data = .cname(target)
                default: data = .ns(target)
                }
            case .mx?:
                let preference = try u16("an MX record")
                guard offset <= end else { throw Error.badRecord("an MX record too short") }
                data = .mx(preference: preference, exchange: try nameInside(end))
            case .soa?:
                _ = try nameInside(end)
                _ = try nameInside(end)
                guard end - offset == 20 else { throw Error.badRecord("an SOA record of the wrong length") }
                offset += 16  // serial, refresh, retry, expire
                soaMinimum = try u32("an SOA record")
            case nil:
                break
            }
            offset = end
            return Record(name: name, type: type, class: cls, ttl: ttl, data: data, soaMinimum: soaMinimum)
        }

        /// A name inside RDATA that ends at `end`: its own bytes must not run past it.
        mutating func nameInside(_ end: Int) throws -> String {
            let labels = try name()
            guard offset <= end else { throw Error.badRecord("a name past its record") }
            return present(labels)
        }
    }
}
