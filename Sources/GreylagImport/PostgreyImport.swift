import GreylagCore

/// postgrey's two Berkeley DB files, read from `db_dump` output
/// (postgrey 1.37, `/usr/sbin/postgrey`):
///
/// - `postgrey.db`: key `lc "$client_net/$sender/$recipient"`, value
///   `"$first,$last"` (older versions may add `,$client_host`). The client
///   net is the network address of the client's /24 or /64
///   (`192.0.2.0`, `2001:DB8:1:2:0:0:0:0` lower-cased), the address itself
///   with `--lookup-by-host` (written `192.0.2.7/32`), and in old versions a
///   bare address for dial-up pools. The null sender is empty. A triplet has
///   passed when `last - first >= delay`; postgrey forgets passed entries
///   `--max-age` after the last sighting and unpassed ones when the retry
///   window is over.
/// - `postgrey_clients.db`: key the client address, value `"$count,$last"`,
///   count being the successful deliveries (at most one an hour).
///
/// Both files are recognised by their keys, so either dump can be given.
/// Keys hashed by `--privacy` cannot be mapped back and are skipped.
enum PostgreyImport {
    static func run(_ dump: (entries: [DBDump.Entry], problems: [ImportProblem]), into c: inout ImportCollector) {
        for p in dump.problems { c.skip(line: p.line, p.reason) }
        for e in dump.entries {
            let key = e.key.text
            let value = e.value.text
            do throws(RowError) {
                if key.contains("/") {
                    let record = try triplet(key: key, value: value, options: c.options, collector: c)
                    c.add(record)
                } else if let address = IPAddress(key) {
                    let clientRecord = try client(address: address, value: value, options: c.options)
                    c.add(clientRecord)
                } else if key.utf8.count == 40, key.utf8.allSatisfy({ SQLDumpReader.hexValue($0) != nil }) {
                    throw RowError("key hashed by postgrey --privacy cannot be mapped back to a triplet or client")
                } else {
                    throw RowError("key is neither client/sender/recipient nor a client address: \(key)")
                }
            } catch {
                c.skip(line: e.line, error.reason)
            }
        }
    }

    /// Two comma-separated integers (a third field, the host part of old
    /// versions, is ignored).
    static func pair(_ value: String) throws(RowError) -> (Int64, Int64) {
        let fields = value.split(separator: ",", omittingEmptySubsequences: false)
        guard fields.count == 2 || fields.count == 3, let a = parseInt64(Array(fields[0].utf8)),
              let b = parseInt64(Array(fields[1].utf8)) else {
            throw RowError("value is not two comma-separated numbers: \(value)")
        }
        return (a, b)
    }

    static func triplet(key: String, value: String, options o: ImportOptions,
                        collector c: ImportCollector) throws(RowError) -> GreylistRecord {
        var parts = key.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var client = parts.removeFirst()
        // --lookup-by-host writes the address with its prefix length: 192.0.2.7/32/...
        if parts.count >= 3, let p = parts.first, (1...3).contains(p.count), p.allSatisfy(\.isNumber),
           IPAddress(client) != nil {
            client += "/" + parts.removeFirst()
        }
        guard parts.count >= 2, let network = c.network(ofClientKey: client) else {
            throw RowError("key is not client/sender/recipient: \(key)")
        }
        let rcpt = parts.removeLast()
        guard let recipient = c.recipient(rcpt) else { throw RowError("key has no recipient: \(key)") }
        let sender = c.sender(parts.joined(separator: "/"))
        let (firstText, lastText) = try pair(value)
        let first = try ImportLimits.time(firstText, "first seen time")
        let lastSeen = try ImportLimits.time(lastText, "last seen time")
        let last = max(first, lastSeen)
        let passed = last - first >= o.delay
        return GreylistRecord(triplet: Triplet(network: network, sender: sender, recipient: recipient),
                              firstSeen: first, lastSeen: last, blockExpires: first + o.delay,
                              recordExpires: passed ? last + o.passTTL : first + o.retryWindow,
                              blockedCount: 1, passedCount: passed ? 1 : 0)
    }

    static func client(address: IPAddress, value: String, options o: ImportOptions) throws(RowError) -> ClientRecord {
        let (countText, lastText) = try pair(value)
        guard countText > 0 else { throw RowError("client count is not positive: \(value)") }
        let count = try ImportLimits.count(countText, "client count")
        let last = try ImportLimits.time(lastText, "last seen time")
        return ClientRecord(network: o.keying.network(of: address), passedTriplets: count, firstSeen: last,
                            lastSeen: last, recordExpires: last + o.passTTL)
    }
}
