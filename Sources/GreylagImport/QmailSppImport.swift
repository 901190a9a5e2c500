import Foundation
import GreylagCore

/// The tables of the qmail-spp greylisting plugin by Manuel Mausz
/// (greylisting-0.5, `greylisting.sql`):
///
/// - `greylisting_data`: one row per triplet, `relay_ip` as `INET6_ATON()`
///   binary (text in versions before 0.4), `block_expires` and
///   `record_expires` in UTC (`UTC_TIMESTAMP()`; server time before 0.4),
///   `create_time`/`last_update` TIMESTAMPs, blocked/passed/aborted counts.
///   A pass sets `record_expires` to now + `record_expire_good` days.
/// - `greylisting_lists`: white- and blacklist by `ipaddr` (address or CIDR)
///   or by recipient domain in `rcpt_to`; a blacklist while `block_expires`
///   is in the future, a whitelist after; ignored after `record_expires`.
enum QmailSppImport {
    static let data = TableSchema(
        name: "greylisting_data",
        columns: ["id", "relay_ip", "mail_from", "rcpt_to", "block_expires", "record_expires", "blocked_count",
                  "passed_count", "aborted_count", "create_time", "last_update"],
        required: ["relay_ip", "mail_from", "rcpt_to", "block_expires", "record_expires"],
        timestampColumns: ["create_time", "last_update"])
    static let lists = TableSchema(
        name: "greylisting_lists",
        columns: ["id", "ipaddr", "ipaddr_start", "ipaddr_end", "ipaddr_prefixsize", "rcpt_to", "block_expires",
                  "record_expires", "create_time", "last_update", "comment"],
        required: ["ipaddr", "rcpt_to", "block_expires", "record_expires"],
        timestampColumns: ["create_time", "last_update"])
    static let schemas = [data, lists]

    static func run(_ input: SQLTables, into c: inout ImportCollector) {
        for p in input.problems { c.skip(line: p.line, p.reason) }
        for table in input.tables {
            for row in table.rows {
                let r = SQLRecord(table: table, row: row)
                do throws(RowError) {
                    try r.checkWidth()
                    if table.schema.name == data.name {
                        try importData(r, into: &c)
                    } else {
                        try importList(r, into: &c)
                    }
                } catch {
                    c.skip(line: r.line, RelaytofromImport.rowLabel(r) + error.reason)
                }
            }
        }
    }

    static func importData(_ r: SQLRecord, into c: inout ImportCollector) throws(RowError) {
        let zone = c.options.timeZone
        guard let address = relayAddress(r["relay_ip"]) else {
            if r["relay_ip"] == .null { throw RowError("relay_ip is NULL") }
            if let b = r["relay_ip"].bytes, b.count >= 3,
               b.indices.dropLast(2).contains(where: { b[$0] == 0xEF && b[$0 + 1] == 0xBF && b[$0 + 2] == 0xBD }) {
                throw RowError("relay_ip was damaged by reading binary as text; pass the file as bytes or dump with --hex-blob")
            }
            throw RowError("relay_ip is not an IPv4 or IPv6 address")
        }
        guard let from = r.text("mail_from") else { throw RowError("mail_from is NULL") }
        guard let to = r.text("rcpt_to"), let recipient = c.recipient(to) else { throw RowError("rcpt_to is empty") }
        guard let blockExpires = try r.time("block_expires", zone: zone) else { throw RowError("block_expires is NULL") }
        guard let recordExpires = try r.time("record_expires", zone: zone) else { throw RowError("record_expires is NULL") }
        let record = try RelaytofromImport.makeRecord(
            triplet: Triplet(network: c.options.keying.network(of: address), sender: c.sender(from), recipient: recipient),
            blockExpires: blockExpires, recordExpires: recordExpires,
            created: try r.time("create_time", zone: zone), updated: try r.time("last_update", zone: zone),
            blocked: try r.integer("blocked_count") ?? 0, passed: try r.integer("passed_count") ?? 0,
            origin: .auto, delay: c.options.delay)
        c.add(record)
    }

    /// `relay_ip` as text (before 0.4, or `SELECT INET6_NTOA(relay_ip)`), as
    /// `INET6_ATON()` bytes (4 or 16, raw or as a hex literal), or as an
    /// `INET_ATON()` integer.
    static func relayAddress(_ value: SQLValue) -> IPAddress? {
        func binary(_ b: [UInt8]) -> IPAddress? {
            if b.count == 4 {
                return .v4(b.reduce(0) { $0 << 8 | UInt32($1) })
            }
            if b.count == 16 {
                let high = b[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                let low = b[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                return IPAddress(IPAddress.v6(high: high, low: low).description)
            }
            return nil
        }
        func integer(_ b: [UInt8]) -> IPAddress? {
            guard let v = parseInt64(b), v >= 0, v <= Int64(UInt32.max) else { return nil }
            return .v4(UInt32(v))
        }
        switch value {
        case .null:
            return nil
        case .binary(let b):
            return binary(b)
        case .number(let b):
            return integer(b)
        case .string(let b):
            if let a = IPAddress(b.text) { return a }
            return binary(b) ?? integer(b)
        }
    }

    static func importList(_ r: SQLRecord, into c: inout ImportCollector) throws(RowError) {
        let zone = c.options.timeZone
        guard let blockExpires = try r.time("block_expires", zone: zone) else { throw RowError("block_expires is NULL") }
        guard let recordExpires = try r.time("record_expires", zone: zone) else { throw RowError("record_expires is NULL") }
        let created = try r.time("create_time", zone: zone) ?? 0
        let comment = r.text("comment").flatMap { $0.isEmpty ? nil : $0 }
            ?? ("greylisting_lists" + (r.text("id").map { " #\($0)" } ?? ""))
        let ip = r.text("ipaddr").flatMap { $0.isEmpty ? nil : $0 }
        let domain = r.text("rcpt_to").flatMap { $0.isEmpty ? nil : $0 }
        guard ip != nil || domain != nil else { throw RowError("neither ipaddr nor rcpt_to is set") }
        // The plugin matches a row by address OR recipient domain, so a row
        // with both is two entries.
        var entries: [ManualEntry] = []
        if let ip {
            entries.append(try RelaytofromImport.manualEntry(
                field: .client, value: ip, blockExpires: blockExpires, recordExpires: recordExpires,
                created: created, comment: comment, options: c.options))
        }
        if let domain {
            // rcpt_to holds the recipient's domain (the whole address when it has no @).
            entries.append(try RelaytofromImport.manualEntry(
                field: domain.contains("@") ? .recipient : .recipientDomain, value: domain,
                blockExpires: blockExpires, recordExpires: recordExpires, created: created, comment: comment,
                options: c.options))
        }
        for e in entries { c.add(e) }
    }
}
