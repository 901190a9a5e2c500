import GreylagCore

/// The results of RFC 7208 section 2.6.
public enum SPFResult: String, Sendable, Hashable, CaseIterable {
    case none, neutral, pass, fail, softfail, temperror, permerror
}

/// The mechanism that decided a result: its text as written in the record
/// and the domain whose record held it.
public struct SPFMatch: Sendable, Hashable, CustomStringConvertible {
    public var mechanism: String
    /// Lower-cased, without a trailing dot.
    public var domain: String

    public init(mechanism: String, domain: String) {
        self.mechanism = mechanism
        self.domain = domain
    }

    /// `ip4:192.0.2.0/24 in _spf.example.net`
    public var description: String { "\(mechanism) in \(domain)" }
}

/// What `check_host` found out.
public struct SPFOutcome: Sendable, Hashable {
    public var result: SPFResult
    /// The expanded `exp=` text of a `fail`, when the record gave one that
    /// could be fetched and expanded; nil otherwise (the caller's default).
    public var explanation: String?
    /// The mechanism that matched (for a pass through `include`, the one in
    /// the included record that matched); nil when none matched.
    public var matched: SPFMatch?
    /// The domain `check_host` was asked about, lower-cased, without a trailing dot.
    public var domain: String
    /// The terms counted against the ten-lookup limit (`include`, `a`, `mx`,
    /// `ptr`, `exists`, `redirect`).
    public var dnsLookups: Int
    /// The lookups of those terms that gave no records (NXDOMAIN or empty).
    public var voidLookups: Int
    /// Every DNS question asked (cached answers not counted again).
    public var queries: Int
    /// Why the result is `permerror` or `temperror`, for logs.
    public var problem: String?

    public init(result: SPFResult, explanation: String? = nil, matched: SPFMatch? = nil, domain: String,
                dnsLookups: Int = 0, voidLookups: Int = 0, queries: Int = 0, problem: String? = nil) {
        self.result = result
        self.explanation = explanation
        self.matched = matched
        self.domain = domain
        self.dnsLookups = dnsLookups
        self.voidLookups = voidLookups
        self.queries = queries
        self.problem = problem
    }

    /// The authorisation a triplet can be keyed by: set only for `pass`.
    public var authorization: SPFAuthorization? {
        guard result == .pass, let matched else { return nil }
        return SPFAuthorization(domain: domain, mechanism: matched.description)
    }
}

/// The bounds of one evaluation. The RFC 7208 limits (section 4.6.4) have
/// their recommended values; the others bound what a hostile record or
/// identity can cost in time and memory.
public struct SPFLimits: Sendable, Hashable {
    /// Terms that cause DNS queries (`include`, `a`, `mx`, `ptr`, `exists`,
    /// `redirect`); one more is `permerror`.
    public var dnsMechanisms: Int = 10
    /// Lookups of those terms that return no records; one more is `permerror`.
    public var voidLookups: Int = 2
    /// MX names one `mx` mechanism may have; more is `permerror`.
    public var mxNames: Int = 10
    /// PTR names looked at by `ptr` and `%{p}`; the others are ignored.
    public var ptrNames: Int = 10
    /// A selected SPF record longer than this (octets) is `permerror`.
    public var recordLength: Int = 8_192
    /// One macro expansion longer than this (octets) is `permerror` (in an
    /// explanation: the explanation is cut).
    public var expansionLength: Int = 4_096
    /// An explanation is cut to this many octets.
    public var explanationLength: Int = 1_024
    /// A hard bound on DNS questions per evaluation, whatever the records
    /// say (the RFC limits already keep it near 120); over it: `permerror`.
    public var queries: Int = 200
    /// The time one evaluation may take (RFC 7208 section 4.6.4 suggests at
    /// least 20 seconds); no question is asked after it has passed, and the
    /// result is `temperror`. A lookup under way still has the resolver's
    /// own deadline, so an evaluation ends at most that much later.
    public var time: Duration = .seconds(20)

    public init() {}
}
