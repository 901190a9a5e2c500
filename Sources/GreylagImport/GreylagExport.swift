import Foundation
import GreylagCore

/// greylag's own export format: JSON Lines, one object a line.
///
/// The first line is the header
/// `{"type":"greylag-export","version":1,"exported_at":…,"ipv4_prefix":24,"ipv6_prefix":64}`
/// (the prefixes tell which keying the networks were made with). Then, in
/// any order:
///
/// - `{"type":"record","network":…,"sender":…,"recipient":…,"first_seen":…,"last_seen":…,"block_expires":…,"record_expires":…,"blocked_count":…,"passed_count":…,"origin":"AUTO"}`
/// - `{"type":"client","network":…,"passed_triplets":…,"first_seen":…,"last_seen":…,"record_expires":…}`
/// - `{"type":"manual","id":…,"list":"whitelist","field":"client","value":…,"comment":…,"created":…,"expires":null}`
///
/// Times are Unix seconds. Values are stored as greylag keeps them and read
/// back unchanged: decoding what was encoded gives the same records.
public enum GreylagExport {
    public static let version = 1

    /// The header line (without a newline).
    public static func header(exportedAt: Int64, keying: NetworkKeying = NetworkKeying()) -> String {
        var o = JSONObject(type: "greylag-export")
        o.add("version", Int64(version))
        o.add("exported_at", exportedAt)
        o.add("ipv4_prefix", Int64(keying.ipv4Prefix))
        o.add("ipv6_prefix", Int64(keying.ipv6Prefix))
        return o.text
    }

    /// One record line (without a newline).
    public static func line(_ r: GreylistRecord) -> String {
        var o = JSONObject(type: "record")
        o.add("network", r.triplet.network)
        o.add("sender", r.triplet.sender)
        o.add("recipient", r.triplet.recipient)
        o.add("first_seen", r.firstSeen)
        o.add("last_seen", r.lastSeen)
        o.add("block_expires", r.blockExpires)
        o.add("record_expires", r.recordExpires)
        o.add("blocked_count", r.blockedCount)
        o.add("passed_count", r.passedCount)
        o.add("origin", r.origin.rawValue)
        return o.text
    }

    /// One client line (without a newline).
    public static func line(_ c: ClientRecord) -> String {
        var o = JSONObject(type: "client")
        o.add("network", c.network)
        o.add("passed_triplets", c.passedTriplets)
        o.add("first_seen", c.firstSeen)
        o.add("last_seen", c.lastSeen)
        o.add("record_expires", c.recordExpires)
        return o.text
    }

    /// One manual list entry line (without a newline).
    public static func line(_ m: ManualEntry) -> String {
        var o = JSONObject(type: "manual")
        o.add("id", m.id)
        o.add("list", m.list.rawValue)
        o.add("field", m.field.rawValue)
        o.add("value", m.value)
        o.add("comment", m.comment)
        o.add("created", m.created)
        o.add("expires", m.expires)
        return o.text
    }

    /// A whole export: header, records, clients, manual entries, each line
    /// ending with a newline.
    public static func encode(records: [GreylistRecord], clients: [ClientRecord], manualEntries: [ManualEntry],
                              exportedAt: Int64, keying: NetworkKeying = NetworkKeying()) -> String {
        var out = header(exportedAt: exportedAt, keying: keying) + "\n"
        for r in records { out += line(r) + "\n" }
        for c in clients { out += line(c) + "\n" }
        for m in manualEntries { out += line(m) + "\n" }
        return out
    }

    // MARK: - Decoding

    private struct Line: Decodable {
        var type: String
        var version: Int?
        var network: String?
        var sender: String?
        var recipient: String?
        var first_seen: Int64?
        var last_seen: Int64?
        var block_expires: Int64?
        var record_expires: Int64?
        var blocked_count: Int64?
        var passed_count: Int64?
        var origin: String?
        var passed_triplets: Int64?
        var id: Int64?
        var list: String?
        var field: String?
        var value: String?
        var comment: String?
        var created: Int64?
        var expires: Int64?
    }

    static func decode(_ bytes: [UInt8], into c: inout ImportCollector) throws(ImportError) {
        c.deriveClients = false
        let decoder = JSONDecoder()
        var lineNo = 0
        var start = 0
        var sawHeader = false
        for i in 0...bytes.count where i == bytes.count || bytes[i] == 0x0A {
            lineNo += 1
            var raw = bytes[start..<i]
            start = i + 1
            if raw.last == 0x0D { raw = raw.dropLast() }
            if raw.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let parsed: Line
            do {
                parsed = try decoder.decode(Line.self, from: Data(raw))
            } catch {
                if !sawHeader { throw ImportError(line: lineNo, "not a greylag export: the first line is not a JSON object with a type") }
                // Also a number that does not fit its field: JSONDecoder refuses it.
                c.skip(line: lineNo, "not a JSON object with a type")
                continue
            }
            if !sawHeader {
                guard parsed.type == "greylag-export" else {
                    throw ImportError(line: lineNo, "not a greylag export: the first line must be the greylag-export header")
                }
                guard let v = parsed.version, v <= version else {
                    throw ImportError(line: lineNo, "greylag export version \(parsed.version.map(String.init) ?? "missing") is not supported (this reads version \(version))")
                }
                sawHeader = true
                continue
            }
            do throws(RowError) {
                switch parsed.type {
                case "record": c.add(try record(parsed))
                case "client": c.add(try client(parsed))
                case "manual": c.add(try manual(parsed))
                default: throw RowError("unknown type \(parsed.type)")
                }
            } catch {
                c.skip(line: lineNo, error.reason)
            }
        }
        if !sawHeader { throw ImportError(line: 1, "empty input: expected a greylag export") }
    }

    private static func need<T>(_ value: T?, _ name: String) throws(RowError) -> T {
        guard let value else { throw RowError("\(name) is missing") }
        return value
    }

    private static func time(_ value: Int64?, _ name: String) throws(RowError) -> Int64 {
        try ImportLimits.time(try need(value, name), name)
    }

    private static func count(_ value: Int64?, _ name: String) throws(RowError) -> Int64 {
        try ImportLimits.count(try need(value, name), name)
    }

    private static func record(_ l: Line) throws(RowError) -> GreylistRecord {
        let originText = try need(l.origin, "origin")
        guard let origin = RecordOrigin(rawValue: originText) else { throw RowError("unknown origin \(originText)") }
        return GreylistRecord(
            triplet: Triplet(network: try need(l.network, "network"), sender: try need(l.sender, "sender"),
                             recipient: try need(l.recipient, "recipient")),
            firstSeen: try time(l.first_seen, "first_seen"), lastSeen: try time(l.last_seen, "last_seen"),
            blockExpires: try time(l.block_expires, "block_expires"),
            recordExpires: try time(l.record_expires, "record_expires"),
            blockedCount: try count(l.blocked_count, "blocked_count"),
            passedCount: try count(l.passed_count, "passed_count"), origin: origin)
    }

    private static func client(_ l: Line) throws(RowError) -> ClientRecord {
        ClientRecord(network: try need(l.network, "network"), passedTriplets: try count(l.passed_triplets, "passed_triplets"),
                     firstSeen: try time(l.first_seen, "first_seen"), lastSeen: try time(l.last_seen, "last_seen"),
                     recordExpires: try time(l.record_expires, "record_expires"))
    }

    private static func manual(_ l: Line) throws(RowError) -> ManualEntry {
        let listText = try need(l.list, "list"), fieldText = try need(l.field, "field")
        guard let list = ListKind(rawValue: listText) else { throw RowError("unknown list \(listText)") }
        guard let field = SelectorField(rawValue: fieldText) else { throw RowError("unknown field \(fieldText)") }
        return ManualEntry(id: try need(l.id, "id"), list: list, field: field, value: try need(l.value, "value"),
                           comment: l.comment ?? "", created: try time(l.created, "created"),
                           expires: try l.expires.map { v throws(RowError) in try ImportLimits.time(v, "expires") })
    }
}

/// A JSON object written key by key, in order.
struct JSONObject {
    private(set) var text: String

    init(type: String) {
        text = "{\"type\":" + JSONObject.quote(type)
        text += "}"
    }

    mutating func add(_ key: String, _ value: String) { append(key, JSONObject.quote(value)) }
    mutating func add(_ key: String, _ value: Int64) { append(key, String(value)) }
    mutating func add(_ key: String, _ value: Int64?) { append(key, value.map(String.init) ?? "null") }

    private mutating func append(_ key: String, _ json: String) {
        text.removeLast()
        text += "," + JSONObject.quote(key) + ":" + json + "}"
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7F:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
