/// The record types greylag asks for: what SPF, DNS lists and reverse-name
/// checks need.
public enum DNSRecordType: UInt16, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case a = 1
    case ns = 2
    case cname = 5
    case soa = 6
    case ptr = 12
    case mx = 15
    case txt = 16
    case aaaa = 28

    public var description: String {
        switch self {
        case .a: return "A"
        case .ns: return "NS"
        case .cname: return "CNAME"
        case .soa: return "SOA"
        case .ptr: return "PTR"
        case .mx: return "MX"
        case .txt: return "TXT"
        case .aaaa: return "AAAA"
        }
    }
}

/// The data of one answer record of the type asked for.
public enum DNSRecordData: Sendable, Hashable {
    /// Four bytes, network order.
    case a([UInt8])
    /// Sixteen bytes, network order.
    case aaaa([UInt8])
    /// The character-strings of one TXT record, in order, as bytes.
    case txt([[UInt8]])
    /// A host name, lower-cased, without the trailing dot.
    case ptr(String)
    case mx(preference: UInt16, exchange: String)
    case cname(String)
    case ns(String)

    /// A TXT record's strings joined, as RFC 7208 section 3.3 reads them;
    /// bytes that are not ASCII become U+FFFD.
    public var joinedText: String? {
        guard case .txt(let parts) = self else { return nil }
        var bytes: [UInt8] = []
        for p in parts { bytes += p }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Why a lookup gave no answer: the caller treats these as "could not
/// decide" (SPF `temperror`, a DNS list skipped), never as a listing.
public enum DNSFailure: String, Sendable, Hashable, Error {
    /// No answer within the lookup's deadline.
    case timeout
    /// SERVFAIL from the resolver.
    case serverFailure = "servfail"
    /// REFUSED, NOTIMP or another error code.
    case refused
    /// The answer could not be parsed, or did not match the question.
    case malformed
    /// The name is not a valid domain name (too long, empty label, ...).
    case badName = "bad_name"
    /// No resolver is configured or reachable.
    case noResolver = "no_resolver"
}

/// The outcome of one lookup of a name and type.
public enum DNSLookupResult: Sendable, Hashable {
    /// The records of the type asked for (CNAMEs already followed); never empty.
    case records([DNSRecordData])
    /// The name exists but has no record of this type (NOERROR, empty answer).
    case noData
    /// The name does not exist (NXDOMAIN).
    case nxDomain
    case failure(DNSFailure)

    /// The records, or an empty list for `noData` and `nxDomain`.
    public var recordsOrEmpty: [DNSRecordData]? {
        switch self {
        case .records(let r): return r
        case .noData, .nxDomain: return []
        case .failure: return nil
        }
    }
}

/// Anything that answers DNS questions: the daemon's non-blocking client,
/// a static zone in tests, the recorded facts of a replayed trace.
///
/// `lookup` never throws and never waits past the resolver's own deadline;
/// a name is given without a trailing dot (one is tolerated).
public protocol DNSResolving: Sendable {
    func lookup(_ name: String, _ type: DNSRecordType) async -> DNSLookupResult
}
