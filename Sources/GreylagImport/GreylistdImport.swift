import Foundation
import GreylagCore
import GreylistdProtocol

/// greylistd's state (greylistd 0.9, `/usr/sbin/greylistd`, `greylistd(8)`):
///
/// - `/var/lib/greylistd/states`: sections `[white]`, `[grey]`, `[black]`
///   with lines `HASH = LASTSEEN FIRSTSEEN COUNT`, and `[statistics]`
///   (`white = N`, `grey = N`, `black = N`, `start = T`, `lastsave = T`),
///   which is not state and is not imported. HASH is Python's `hash()` of
///   the data words joined by one space: 32 or 64 bits, signed, and since
///   Python 3.3 seeded anew at each start, so it cannot be computed again.
/// - `/var/lib/greylistd/triplets` (kept while `savetriplets` is true, the
///   default): `HASH = DATA ...`, the words that hash stands for.
///
/// FIRSTSEEN is when the data entered its list (a triplet that turned white
/// starts again there), COUNT the requests seen since. The data words map
/// as the greylistd socket maps them (`GreylistdData`): white triplets
/// become passed triplets, grey ones pending triplets, a white or black
/// address alone (greylistd's `singlecheck` entries, or `greylist add`)
/// a manual white- or blacklist entry for that client. A hash without its
/// words, and black data other than an address, cannot be imported and is
/// reported.
enum GreylistdImport {
    /// A reason that starts so marks a hash whose words are unknown.
    static let unmappedReason = "has no line in the triplets file"

    static func run(states: [UInt8], triplets: [UInt8]?, tripletsName: String?,
                    into c: inout ImportCollector) throws(ImportError) -> Int {
        let words = triplets.map { readTriplets($0, file: tripletsName, into: &c) } ?? [:]
        var section: String? = nil
        var sawSection = false
        var unmapped = 0
        for (lineNo, raw) in lines(states) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("["), let close = line.firstIndex(of: "]") {
                let name = line[line.index(after: line.startIndex)..<close].trimmingCharacters(in: .whitespaces).lowercased()
                sawSection = sawSection || ["white", "grey", "black", "statistics"].contains(name)
                section = name
                if !["white", "grey", "black", "statistics"].contains(name) {
                    c.skip(line: lineNo, "unknown section [\(name)]: its lines are skipped")
                }
                continue
            }
            guard sawSection else {
                throw ImportError(line: lineNo, "not a greylistd states file: data before any [white], [grey], [black] or [statistics] section")
            }
            guard let section, let state = GreylistdRequest.State(rawValue: section) else { continue }
            do throws(RowError) {
                guard let eq = line.firstIndex(of: "=") else { throw RowError("not HASH = LASTSEEN FIRSTSEEN COUNT: \(line)") }
                let hashText = line[..<eq].trimmingCharacters(in: .whitespaces)
                guard let hash = parseInt64(Array(hashText.utf8)) else { throw RowError("hash is not a number: \(hashText)") }
                let fields = line[line.index(after: eq)...].split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard fields.count == 3, let last = parseInt64(Array(fields[0].utf8)),
                      let first = parseInt64(Array(fields[1].utf8)), let count = parseInt64(Array(fields[2].utf8)) else {
                    throw RowError("value is not LASTSEEN FIRSTSEEN COUNT: \(line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces))")
                }
                let lastSeen = try ImportLimits.time(last, "last seen time")
                let firstSeen = try ImportLimits.time(first, "first seen time")
                let hits = try ImportLimits.count(count, "count")
                guard let data = words[hash] else {
                    unmapped += 1
                    throw RowError("[\(section)] hash \(hash) \(unmappedReason): greylistd keeps only a hash of the data, "
                                   + "which cannot be turned back into a triplet")
                }
                try add(data, state: state, first: firstSeen, last: max(firstSeen, lastSeen), count: hits, into: &c)
            } catch {
                c.skip(line: lineNo, error.reason)
            }
        }
        guard sawSection else { throw ImportError(line: 1, "not a greylistd states file: no [white], [grey], [black] or [statistics] section") }
        return unmapped
    }

    /// The triplets file: hash → data words, lower-cased as greylistd hashes them.
    static func readTriplets(_ bytes: [UInt8], file: String?, into c: inout ImportCollector) -> [Int64: [String]] {
        var out: [Int64: [String]] = [:]
        for (lineNo, line) in lines(bytes) where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let sep = line.range(of: " = "),
                  let hash = parseInt64(Array(line[..<sep.lowerBound].trimmingCharacters(in: .whitespaces).utf8)) else {
                c.skip(line: lineNo, file: file, "not HASH = DATA: \(line)")
                continue
            }
            let words = line[sep.upperBound...].lowercased().split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            guard !words.isEmpty else {
                c.skip(line: lineNo, file: file, "no data after the hash: \(line)")
                continue
            }
            out[hash] = words
        }
        return out
    }

    static func add(_ words: [String], state: GreylistdRequest.State, first: Int64, last: Int64, count: Int64,
                    into c: inout ImportCollector) throws(RowError) {
        let o = c.options
        let data = GreylistdData(words: words)
        let triplet: Triplet
        switch data {
        case .client(let client):
            if state != .grey {
                // A whole client white- or blacklisted: a manual entry, as greylistd's singlecheck entries act.
                guard (try? ListRule(field: .client, text: words[0], origin: "import")) != nil else {
                    throw RowError("not a client address or network: \(words[0])")
                }
                c.add(ManualEntry(id: 0, list: state == .white ? .whitelist : .blacklist, field: .client, value: words[0],
                                  comment: "greylistd import", created: first))
                return
            }
            guard let a = IPAddress(client) else {
                throw RowError("not a client address: \(words[0])")
            }
            triplet = Triplet(network: o.keying.network(of: a), sender: Triplet.connectionMarker,
                              recipient: Triplet.connectionMarker)
        case .triplet(let client, let sender, let recipient):
            guard let network = c.network(ofAddress: client) else { throw RowError("not a client address: \(client)") }
            guard let rcpt = c.recipient(recipient) else { throw RowError("empty recipient: \(words.joined(separator: " "))") }
            triplet = Triplet(network: network, sender: c.sender(sender), recipient: rcpt)
        case .words:
            guard let key = data.key else { throw RowError("no key for: \(words.joined(separator: " "))") }
            triplet = key
        }
        switch state {
        case .white:
            c.add(GreylistRecord(triplet: triplet, firstSeen: first, lastSeen: last, blockExpires: first,
                                 recordExpires: last + o.passTTL, blockedCount: 1, passedCount: max(1, count)))
        case .grey:
            c.add(GreylistRecord(triplet: triplet, firstSeen: first, lastSeen: last, blockExpires: first + o.delay,
                                 recordExpires: first + o.retryWindow, blockedCount: max(1, count), passedCount: 0))
        case .black:
            throw RowError("greylistd blacklists \"\(words.joined(separator: " "))\" as a whole; greylag refuses by client, "
                           + "sender or recipient: add a rule such as `greylag blacklist add sender ADDRESS`")
        }
    }

    /// The lines of `bytes` with their 1-based numbers (bytes that are not
    /// UTF-8 are replaced, as greylistd reads its files as text).
    static func lines(_ bytes: [UInt8]) -> [(Int, String)] {
        var out: [(Int, String)] = []
        var start = 0
        var n = 0
        for i in 0...bytes.count where i == bytes.count || bytes[i] == 0x0A {
            n += 1
            if i > start || i < bytes.count {
                var slice = bytes[start..<i]
                if slice.last == 0x0D { slice = slice.dropLast() }
                out.append((n, String(decoding: slice, as: UTF8.self)))
            }
            start = i + 1
        }
        return out
    }
}
