import GreylagCore
import GreylistdProtocol

/// Gathers what the format readers produce: leaves out expired rows, merges
/// duplicate triplets and list entries, and derives client records.
struct ImportCollector {
    let options: ImportOptions
    /// Derive client records from passed triplets when the source gave none.
    var deriveClients = true

    private var records: [GreylistRecord] = []
    private var recordIndex: [Triplet: Int] = [:]
    private var clients: [ClientRecord] = []
    private var clientIndex: [String: Int] = [:]
    private var manual: [ManualEntry] = []
    private var manualIndex: [ManualKey: Int] = [:]
    private var skipped: [ImportProblem] = []
    private var expired = 0

    private struct ManualKey: Hashable {
        var list: ListKind
        var field: SelectorField
        var value: String
    }

    init(options: ImportOptions) {
        self.options = options
    }

    mutating func skip(line: Int, _ reason: String) {
        skipped.append(ImportProblem(line: line, reason: reason))
    }

    /// A row of another input file than the one being imported.
    mutating func skip(line: Int, file: String?, _ reason: String) {
        var p = ImportProblem(line: line, reason: reason)
        p.file = file
        skipped.append(p)
    }

    var hasSkipped: Bool { !skipped.isEmpty }
    var isEmpty: Bool { records.isEmpty && clients.isEmpty && manual.isEmpty && expired == 0 }
    var firstProblem: ImportProblem? { skipped.first }

    /// Adds a triplet; a second row of the same triplet is merged into the
    /// first: earliest first seen, latest last seen, summed counts, latest expiries.
    mutating func add(_ record: GreylistRecord) {
        guard record.recordExpires >= options.now else {
            expired += 1
            return
        }
        guard let i = recordIndex[record.triplet] else {
            recordIndex[record.triplet] = records.count
            records.append(record)
            return
        }
        var r = records[i]
        r.firstSeen = min(r.firstSeen, record.firstSeen)
        r.lastSeen = max(r.lastSeen, record.lastSeen)
        r.blockExpires = max(r.blockExpires, record.blockExpires)
        r.recordExpires = max(r.recordExpires, record.recordExpires)
        r.blockedCount += record.blockedCount
        r.passedCount += record.passedCount
        if record.origin == .manual { r.origin = .manual }
        records[i] = r
    }

    /// Adds a client network; several rows of one network (postgrey keeps
    /// clients by address) add up.
    mutating func add(_ client: ClientRecord) {
        guard client.recordExpires >= options.now else {
            expired += 1
            return
        }
        guard let i = clientIndex[client.network] else {
            clientIndex[client.network] = clients.count
            clients.append(client)
            return
        }
        var c = clients[i]
        c.passedTriplets += client.passedTriplets
        c.firstSeen = min(c.firstSeen, client.firstSeen)
        c.lastSeen = max(c.lastSeen, client.lastSeen)
        c.recordExpires = max(c.recordExpires, client.recordExpires)
        clients[i] = c
    }

    /// Adds a manual list entry; the same entry twice keeps the earliest
    /// creation and the latest expiry (none beats any).
    mutating func add(_ entry: ManualEntry) {
        if let e = entry.expires, e <= options.now {
            expired += 1
            return
        }
        let key = ManualKey(list: entry.list, field: entry.field, value: entry.value)
        guard let i = manualIndex[key] else {
            manualIndex[key] = manual.count
            manual.append(entry)
            return
        }
        var m = manual[i]
        m.created = min(m.created, entry.created)
        if let a = m.expires, let b = entry.expires { m.expires = max(a, b) } else { m.expires = nil }
        if m.comment.isEmpty { m.comment = entry.comment }
        manual[i] = m
    }

    func result() -> ImportResult {
        var clientList = clients
        if clientList.isEmpty && deriveClients {
            clientList = ImportCollector.deriveClients(from: records)
        }
        return ImportResult(records: records, clients: clientList, manualEntries: manual,
                            skipped: skipped, expired: expired)
    }

    /// greylag's clients table from passed triplets: per network the number
    /// of distinct passed triplets, first and last seen, the latest expiry.
    static func deriveClients(from records: [GreylistRecord]) -> [ClientRecord] {
        var out: [ClientRecord] = []
        var index: [String: Int] = [:]
        for r in records where r.hasPassed && r.triplet.sender != Triplet.connectionMarker
            && r.triplet.network != GreylistdData.wordsNetwork {
            let net = r.triplet.network
            if let i = index[net] {
                out[i].passedTriplets += 1
                out[i].firstSeen = min(out[i].firstSeen, r.firstSeen)
                out[i].lastSeen = max(out[i].lastSeen, r.lastSeen)
                out[i].recordExpires = max(out[i].recordExpires, r.recordExpires)
            } else {
                index[net] = out.count
                out.append(ClientRecord(network: net, passedTriplets: 1, firstSeen: r.firstSeen,
                                        lastSeen: r.lastSeen, recordExpires: r.recordExpires))
            }
        }
        return out
    }

    // MARK: - Mapping helpers shared by the readers

    /// The network a client address is keyed by, or nil if it is no address.
    func network(ofAddress text: some StringProtocol) -> String? {
        guard let a = IPAddress(text) else { return nil }
        return options.keying.network(of: a)
    }

    /// The network for a stored client key that may be an address, a CIDR
    /// network or a partial IPv4 network (`192.0.2`): addresses (and
    /// full-length prefixes) are keyed with `options.keying`, networks keep
    /// their own prefix.
    func network(ofClientKey text: some StringProtocol) -> String? {
        if let a = IPAddress(text) { return options.keying.network(of: a) }
        guard let n = IPNetwork(text) else { return nil }
        if n.prefix == (n.address.isIPv4 ? 32 : 128) { return options.keying.network(of: n.address) }
        return n.description
    }

    /// The sender as a triplet stores it (`<>` for the null sender).
    func sender(_ raw: String) -> String {
        AddressNormalizer.sender(raw, normalize: options.normalizeSender)
    }

    /// The recipient as a triplet stores it, or nil when empty.
    func recipient(_ raw: String) -> String? {
        let r = AddressNormalizer.recipient(raw)
        return r.isEmpty ? nil : r
    }
}
