import Foundation
import GreylagCore

/// relaydelay's `relaytofrom` table, also used by the qmail greylisting
/// setups derived from it.
///
/// Automatic rows hold a (relay_ip, mail_from, rcpt_to) triplet with its
/// block and record expiry and counts; `create_time` becomes first seen,
/// `last_update` last seen, and `aborted_count` (passes whose message was
/// later aborted) has no greylag equivalent. Rows without `relay_ip` are
/// relaydelay's reverse-tracking rows and are skipped. Manual rows
/// (`origin_type` MANUAL) leave fields NULL (or empty) as wildcards: with
/// only one field set they are list entries, a blacklist while
/// `block_expires` is in the future (relaydelay uses `9999-12-31 23:59:59`),
/// a whitelist when it has passed (`0000-00-00 00:00:00`); with all three
/// set, a record of origin MANUAL. `record_expires` `9999-12-31` means "never".
enum RelaytofromImport {
    static let schema = [TableSchema(
        name: "relaytofrom",
        columns: ["id", "relay_ip", "mail_from", "rcpt_to", "block_expires", "record_expires", "blocked_count",
                  "passed_count", "aborted_count", "origin_type", "create_time", "last_update"],
        required: ["relay_ip", "mail_from", "rcpt_to", "block_expires", "record_expires"],
        timestampColumns: ["last_update"])]

    static func run(_ input: SQLTables, into c: inout ImportCollector) {
        for p in input.problems { c.skip(line: p.line, p.reason) }
        for table in input.tables {
            for row in table.rows {
                let r = SQLRecord(table: table, row: row)
                do throws(RowError) {
                    try r.checkWidth()
                    try importRow(r, into: &c)
                } catch {
                    c.skip(line: r.line, rowLabel(r) + error.reason)
                }
            }
        }
    }

    /// `id 12: ` when the row has an id, to tell rows of one long INSERT line apart.
    static func rowLabel(_ r: SQLRecord) -> String {
        if let id = r.text("id") { return "id \(id): " }
        return r.row.position > 1 ? "row \(r.row.position): " : ""
    }

    static func importRow(_ r: SQLRecord, into c: inout ImportCollector) throws(RowError) {
        let zone = c.options.timeZone
        let origin = r.text("origin_type")?.uppercased() ?? "AUTO"
        guard origin == "AUTO" || origin == "MANUAL" else {
            throw RowError("origin_type is neither AUTO nor MANUAL: \(origin)")
        }
        guard let blockExpires = try r.time("block_expires", zone: zone) else { throw RowError("block_expires is NULL") }
        guard let recordExpires = try r.time("record_expires", zone: zone) else { throw RowError("record_expires is NULL") }
        let created = try r.time("create_time", zone: zone)
        let updated = try r.time("last_update", zone: zone)
        // Manual rows write wildcards as NULL or as ''.
        func field(_ name: String) -> String? {
            guard let t = r.text(name) else { return nil }
            return origin == "MANUAL" && t.trimmingCharacters(in: .whitespaces).isEmpty ? nil : t
        }
        let relay = field("relay_ip"), from = field("mail_from"), to = field("rcpt_to")

        if origin == "MANUAL" && [relay, from, to].contains(where: { $0 == nil }) {
            let set = [("relay_ip", relay), ("mail_from", from), ("rcpt_to", to)].filter { $0.1 != nil }
            guard set.count == 1, let only = set.first, let value = only.1 else {
                if set.isEmpty { throw RowError("manual row with no relay_ip, mail_from or rcpt_to") }
                throw RowError("manual entry on \(set.map(\.0).joined(separator: " and ")) together has no greylag equivalent")
            }
            let fieldKind: SelectorField = only.0 == "relay_ip" ? .client : (only.0 == "mail_from" ? .sender : .recipient)
            let entry = try manualEntry(field: fieldKind, value: value, blockExpires: blockExpires,
                                        recordExpires: recordExpires, created: created ?? 0,
                                        comment: "relaytofrom" + (r.text("id").map { " #\($0)" } ?? ""), options: c.options)
            c.add(entry)
            return
        }

        guard let relay else { throw RowError("no relay_ip (a reverse-tracking row); greylag keys triplets by client") }
        guard let network = c.network(ofAddress: relay.trimmingCharacters(in: .whitespaces)) else {
            throw RowError("relay_ip is not an IP address: \(relay)")
        }
        guard let from else { throw RowError("mail_from is NULL") }
        guard let to, let recipient = c.recipient(to) else { throw RowError("rcpt_to is empty") }
        let record = try makeRecord(
            triplet: Triplet(network: network, sender: c.sender(from), recipient: recipient),
            blockExpires: blockExpires, recordExpires: recordExpires, created: created, updated: updated,
            blocked: try r.integer("blocked_count") ?? 0, passed: try r.integer("passed_count") ?? 0,
            origin: origin == "MANUAL" ? .manual : .auto, delay: c.options.delay)
        c.add(record)
    }

    /// A record from the columns the relaydelay-style tables share. Without a
    /// creation time, first seen is the block expiry less the delay (0 for the
    /// zero date); without a last update, last seen is first seen.
    static func makeRecord(triplet: Triplet, blockExpires: Int64, recordExpires: Int64, created: Int64?,
                           updated: Int64?, blocked: Int64, passed: Int64, origin: RecordOrigin,
                           delay: Int64) throws(RowError) -> GreylistRecord {
        guard blocked >= 0, passed >= 0 else { throw RowError("negative count") }
        let first = created.flatMap { $0 > 0 ? $0 : nil } ?? max(0, blockExpires - delay)
        let last = max(first, updated.flatMap { $0 > 0 ? $0 : nil } ?? first)
        return GreylistRecord(triplet: triplet, firstSeen: first, lastSeen: last, blockExpires: blockExpires,
                              recordExpires: recordExpires, blockedCount: blocked, passedCount: passed,
                              origin: origin)
    }

    /// A manual list entry: blacklist while its block runs at `options.now`,
    /// whitelist after; an expiry in year 9999 means none.
    static func manualEntry(field: SelectorField, value raw: String, blockExpires: Int64, recordExpires: Int64,
                            created: Int64, comment: String, options: ImportOptions) throws(RowError) -> ManualEntry {
        let value: String
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        switch field {
        case .client:
            guard let n = IPNetwork(trimmed) else { throw RowError("not an IP address or network: \(raw)") }
            value = n.description
        default:
            var v = trimmed.lowercased()
            if v != "<>", v.count >= 2, v.hasPrefix("<"), v.hasSuffix(">") { v = String(v.dropFirst().dropLast()) }
            value = v
        }
        let entry = ManualEntry(id: 0, list: blockExpires > options.now ? .blacklist : .whitelist, field: field,
                                value: value, comment: comment, created: created,
                                expires: recordExpires >= CivilTime.farFuture ? nil : recordExpires)
        do {
            _ = try entry.rule()
        } catch {
            throw RowError("\(field.rawValue) entry \(value): \(error.message)")
        }
        return entry
    }
}
