import GreylagCore

/// milter-greylist's dump file (`dump.c`, `pending.c`, `dump_lex.l`,
/// `dump_yacc.y` of milter-greylist 4.x; 3.x wrote the same lines in two
/// sections). One tuple a line, fields separated by blanks, `#` starting a
/// comment (the time as a date, section headers, the summary):
///
///     IP  SENDER  RECIPIENT  TIME                 greylisted: TIME = when it will be accepted
///     IP  SENDER  RECIPIENT  TIME AUTO            auto-whitelisted: TIME = when that expires
///     IP  SENDER  RECIPIENT  TIME TARPIT-TIME TARPIT   greylisted and tarpitted
///
/// Addresses may carry angle brackets; the null sender is `<>`. Greylisted
/// tuples are kept `timeout` after TIME (`retryWindow` stands for it), and
/// an auto-whitelisted tuple was last seen `autowhite` before its expiry
/// (`passTTL` stands for it).
enum MilterGreylistImport {
    static func run(_ bytes: [UInt8], into c: inout ImportCollector) throws(ImportError) {
        var lineNo = 0
        var start = 0
        var dataLines = 0
        var firstBad: ImportProblem?
        var good = 0
        for i in 0...bytes.count where i == bytes.count || bytes[i] == 0x0A {
            lineNo += 1
            let line = bytes[start..<i]
            start = i + 1
            var fields: [String] = []
            for f in line.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
                if f.first == UInt8(ascii: "#") { break }
                fields.append(Array(f).text)
            }
            if fields.isEmpty { continue }
            dataLines += 1
            do throws(RowError) {
                let record = try tuple(fields, options: c.options, collector: c)
                c.add(record)
                good += 1
            } catch {
                if firstBad == nil { firstBad = ImportProblem(line: lineNo, reason: error.reason) }
                c.skip(line: lineNo, error.reason)
            }
        }
        if good == 0, let firstBad {
            throw ImportError(line: firstBad.line, "not a milter-greylist dump: \(firstBad.reason)")
        }
    }

    static func tuple(_ f: [String], options o: ImportOptions, collector c: ImportCollector) throws(RowError)
        -> GreylistRecord {
        guard f.count >= 4 else {
            throw RowError("expected address, sender, recipient and time, found \(f.count) field\(f.count == 1 ? "" : "s")")
        }
        guard let network = c.network(ofAddress: f[0]) else { throw RowError("not an IP address: \(f[0])") }
        guard let recipient = c.recipient(f[2]) else { throw RowError("empty recipient") }
        guard let parsed = parseInt64(Array(f[3].utf8)) else { throw RowError("time is not a number: \(f[3])") }
        let time = try ImportLimits.time(parsed, "time")
        let triplet = Triplet(network: network, sender: c.sender(f[1]), recipient: recipient)
        let rest = f.dropFirst(4).map { $0.uppercased() }
        if rest.isEmpty || (rest.count == 2 && rest[1] == "TARPIT" && parseInt64(Array(rest[0].utf8)) != nil) {
            // Greylisted: accepted from `time`, forgotten `timeout` after it.
            let first = time - o.delay
            return GreylistRecord(triplet: triplet, firstSeen: first, lastSeen: first, blockExpires: time,
                                  recordExpires: time + o.retryWindow, blockedCount: 1, passedCount: 0)
        }
        if rest == ["AUTO"] {
            // Auto-whitelisted until `time`, which was set to last pass + autowhite.
            let last = min(time - o.passTTL, o.now)
            return GreylistRecord(triplet: triplet, firstSeen: last - o.delay, lastSeen: last, blockExpires: last,
                                  recordExpires: time, blockedCount: 1, passedCount: 1)
        }
        throw RowError("unexpected fields after the time: \(f.dropFirst(4).joined(separator: " "))")
    }
}
