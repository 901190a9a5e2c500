import Foundation
import GreylagCore
import GreylagStore
import Logging

/// One admin command, as the CLI sends it over the admin socket (one JSON
/// object per line) and as `AdminService` carries it out.
public struct AdminRequest: Codable, Sendable, Hashable {
    public enum Command: String, Codable, Sendable {
        /// Add (or update) a manual white- or blacklist entry.
        case add
        /// Remove a manual entry.
        case remove
        /// Show the manual entries of a list.
        case entries
        /// Show greylisting records.
        case records
        /// Delete greylisting records.
        case delete
        /// Let waiting (deferred, not yet passed) triplets through at their next retry.
        case release
        /// Counts of decisions and records.
        case stats
        /// Reload configuration, list files and manual entries.
        case reload

        /// True for the commands that change state (and need authority).
        public var changesState: Bool {
            switch self {
            case .add, .remove, .delete, .release, .reload: return true
            case .entries, .records, .stats: return false
            }
        }
    }

    public var command: Command
    public var list: ListKind?
    public var field: SelectorField?
    public var value: String?
    public var comment: String?
    /// For `add`: seconds until the entry expires; nil: never.
    public var expiresIn: Int64?
    /// Record filters: a client address or network, a sender, a recipient.
    public var client: String?
    public var sender: String?
    public var recipient: String?
    /// `pending`, `passed` or `any`.
    public var state: String?
    public var limit: Int?

    public init(command: Command, list: ListKind? = nil, field: SelectorField? = nil, value: String? = nil,
                comment: String? = nil, expiresIn: Int64? = nil, client: String? = nil, sender: String? = nil,
                recipient: String? = nil, state: String? = nil, limit: Int? = nil) {
        self.command = command
        self.list = list
        self.field = field
        self.value = value
        self.comment = comment
        self.expiresIn = expiresIn
        self.client = client
        self.sender = sender
        self.recipient = recipient
        self.state = state
        self.limit = limit
    }
}

/// A greylisting record as admin commands show it.
public struct RecordView: Codable, Sendable, Hashable {
    public var network: String
    public var sender: String
    public var recipient: String
    public var firstSeen: Int64
    public var lastSeen: Int64
    public var blockExpires: Int64
    public var recordExpires: Int64
    public var blockedCount: Int64
    public var passedCount: Int64
    public var origin: String

    init(_ r: GreylistRecord) {
        network = r.triplet.network
        sender = r.triplet.sender
        recipient = r.triplet.recipient
        firstSeen = r.firstSeen
        lastSeen = r.lastSeen
        blockExpires = r.blockExpires
        recordExpires = r.recordExpires
        blockedCount = r.blockedCount
        passedCount = r.passedCount
        origin = r.origin.rawValue
    }
}

/// What `stats` reports.
public struct StatsView: Codable, Sendable, Hashable {
    /// Decisions since the daemon started; nil when no daemon answered.
    public var decisions: DecisionCounts?
    /// The store's counts; nil when the daemon answered but the store did not (see `storeError`).
    public var pendingTriplets: Int64?
    public var passedTriplets: Int64?
    public var autowhitelistedClients: Int64?
    public var manualWhitelist: Int?
    public var manualBlacklist: Int?
    /// Rules from configuration, list files and the built-in list, when a daemon answered.
    public var configuredWhitelistRules: Int?
    public var configuredBlacklistRules: Int?
    /// Decisions the failure mode answered since start, when a daemon answered.
    public var storeFailures: Int?
    /// True while the daemon answers decisions with the failure mode because the store fails.
    public var storeDegraded: Bool?
    /// Why the store could not be opened, while the daemon serves without it.
    public var storeUnavailable: String?
    /// Why the store's counts are missing, when the daemon answered without them.
    public var storeError: String?
}

/// The answer to an `AdminRequest`.
public struct AdminResponse: Codable, Sendable, Hashable {
    public var ok: Bool
    public var error: String?
    public var message: String?
    public var entries: [ManualEntry]?
    public var records: [RecordView]?
    public var stats: StatsView?
    /// True when a running daemon carried the command out (so it is in force).
    public var live: Bool?
    /// Why it failed: `invalid` (the request), `not_found`, `unavailable` (the store or the daemon).
    public var errorKind: String?

    public static func failure(_ message: String, kind: String = "invalid") -> AdminResponse {
        var r = AdminResponse(ok: false, error: message)
        r.errorKind = kind
        return r
    }

    public init(ok: Bool, error: String? = nil, message: String? = nil, entries: [ManualEntry]? = nil,
                records: [RecordView]? = nil, stats: StatsView? = nil, live: Bool? = nil) {
        self.ok = ok
        self.error = error
        self.message = message
        self.entries = entries
        self.records = records
        self.stats = stats
        self.live = live
    }
}

/// Carries out admin commands against the store and, inside a running
/// daemon, puts list changes in force at once. The admin socket and the
/// CLI (when no daemon runs) both use it.
public struct AdminService: Sendable {
    public let store: any GreylistStore
    /// The daemon's service; nil when the CLI works on the store alone.
    public let service: GreylistService?
    public let policy: GreylistPolicy
    public let clock: @Sendable () -> Int64
    /// Reloads configuration and lists (set by the daemon).
    public let reload: (@Sendable () async -> (ok: Bool, summary: String))?
    /// Where every change (add, remove, delete, reload) is logged, with who asked.
    public let logger: Logger?

    public init(store: any GreylistStore, service: GreylistService?, policy: GreylistPolicy,
                clock: @escaping @Sendable () -> Int64 = unixNow, reload: (@Sendable () async -> (ok: Bool, summary: String))? = nil,
                logger: Logger? = nil) {
        self.store = store
        self.service = service
        self.policy = policy
        self.clock = clock
        self.reload = reload
        self.logger = logger
    }

    /// Carries out `r` for `source` (who asked, for the log: "admin socket
    /// uid 1000 pid 4242", "http 127.0.0.1:40312 with the token").
    public func handle(_ r: AdminRequest, from source: String = "a local caller") async -> AdminResponse {
        let response: AdminResponse
        do {
            var done = try await perform(r)
            done.live = service != nil
            response = done
        } catch let e as AdminError {
            response = .failure(e.message, kind: e.kind)
        } catch {
            response = .failure("store error: \(error)", kind: "unavailable")
        }
        if r.command.changesState, let logger {
            let selection = [r.client.map { "client=\($0)" }, r.sender.map { "sender=<\($0)>" },
                             r.recipient.map { "recipient=<\($0)>" }]
            let what = ([r.list?.rawValue, r.field?.rawValue, r.value].compactMap { $0 }
                + selection.compactMap { $0 }).joined(separator: " ").logEscaped
            if response.ok {
                logger.notice("admin change by \(source.logEscaped): \(r.command.rawValue)\(what.isEmpty ? "" : " " + what): \((response.message ?? "done").logEscaped)")
            } else {
                logger.warning("admin change by \(source.logEscaped) failed: \(r.command.rawValue)\(what.isEmpty ? "" : " " + what): \((response.error ?? "").logEscaped)")
            }
        }
        return response
    }

    struct AdminError: Error {
        var message: String
        var kind = "invalid"
    }

    private func perform(_ r: AdminRequest) async throws -> AdminResponse {
        let now = clock()
        switch r.command {
        case .add:
            let (list, field, value) = try entryKey(r)
            if let e = r.expiresIn, e <= 0 { throw AdminError(message: "expiry must be in the future") }
            if let e = r.expiresIn, e > NumericLimits.maxDuration {
                throw AdminError(message: "expires_in \(e) is out of range: at most \(NumericLimits.maxDuration) seconds (10 years)")
            }
            let entry = try await store.addManualEntry(ManualEntry(
                id: 0, list: list, field: field, value: value, comment: r.comment ?? "", created: now,
                expires: r.expiresIn.map { now.saturatingAdd($0) }))
            try await refresh()
            return AdminResponse(ok: true, message: "\(list.rawValue) entry #\(entry.id) \(field.rawValue) \(value)",
                                 entries: [entry])
        case .remove:
            let (list, field, value) = try entryKey(r)
            guard try await store.removeManualEntry(list: list, field: field, value: value) else {
                throw AdminError(message: "no \(list.rawValue) entry \(field.rawValue) \(value)", kind: "not_found")
            }
            try await refresh()
            return AdminResponse(ok: true, message: "removed \(list.rawValue) entry \(field.rawValue) \(value)")
        case .entries:
            let all = try await store.manualEntries()
            return AdminResponse(ok: true, entries: all.filter { r.list == nil || $0.list == r.list })
        case .records:
            let filter = try recordFilter(r)
            let records = try await store.records(matching: filter, now: now)
            return AdminResponse(ok: true, records: records.map(RecordView.init))
        case .delete:
            let filter = try recordFilter(r, forDelete: true)
            var removed = 0
            for record in try await store.records(matching: filter, now: now) {
                if try await store.delete(record.triplet) { removed += 1 }
            }
            return AdminResponse(ok: true, message: "deleted \(removed) record(s)")
        case .release:
            var filter = try recordFilter(r, forDelete: true, verb: "release")
            filter.state = .pending
            var released: [RecordView] = []
            let passTTL = (service?.engine.policy ?? policy).passTTL
            for record in try await store.records(matching: filter, now: now) {
                if try await store.release(record.triplet, now: now, passTTL: passTTL) {
                    released.append(RecordView(record))
                }
            }
            guard !released.isEmpty else {
                throw AdminError(message: "no waiting triplet matches", kind: "not_found")
            }
            // The log line names what was let through (the first ten).
            let named = released.prefix(10).map { "\($0.network)/<\($0.sender)>/<\($0.recipient)>" }
                .joined(separator: ", ") + (released.count > 10 ? ", ..." : "")
            return AdminResponse(ok: true, message: "released \(released.count) waiting triplet(s), "
                                 + "their next retry passes: \(named)", records: released)
        case .stats:
            let configured = service?.configuredLists
            var stats = StatsView(
                decisions: service?.counters.snapshot(),
                configuredWhitelistRules: configured?.whitelist.count,
                configuredBlacklistRules: configured?.blacklist.count,
                storeFailures: service?.health.failures,
                storeDegraded: service?.health.degraded,
                storeUnavailable: service?.health.unavailableReason)
            do {
                let counts = try await store.counts(now: now)
                let manual = try await store.manualEntries().filter { $0.expires.map { now < $0 } ?? true }
                stats.pendingTriplets = counts.pending
                stats.passedTriplets = counts.passed
                stats.autowhitelistedClients = counts.clients
                stats.manualWhitelist = manual.filter { $0.list == .whitelist }.count
                stats.manualBlacklist = manual.filter { $0.list == .blacklist }.count
            } catch {
                // A running daemon still tells what it decided, and why the store's part is missing.
                guard service != nil else { throw error }
                stats.storeError = "\(error)"
            }
            return AdminResponse(ok: true, stats: stats)
        case .reload:
            guard let reload else { throw AdminError(message: "greylag is not running; nothing to reload", kind: "unavailable") }
            let (ok, summary) = await reload()
            return ok ? AdminResponse(ok: true, message: summary) : .failure(summary, kind: "invalid")
        }
    }

    /// Re-reads the manual entries into the running daemon.
    private func refresh() async throws {
        try await service?.refreshManualEntries()
    }

    /// List, field and canonical value of an add/remove request.
    private func entryKey(_ r: AdminRequest) throws -> (ListKind, SelectorField, String) {
        guard let list = r.list else { throw AdminError(message: "which list: whitelist or blacklist") }
        guard let field = r.field else {
            throw AdminError(message: "a field is needed: " + SelectorField.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard let raw = r.value, !raw.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw AdminError(message: "a value is needed")
        }
        do {
            return (list, field, Self.canonical(try ListRule(field: field, text: raw, origin: "admin")))
        } catch {
            throw AdminError(message: "\(field.rawValue): \(error.message)")
        }
    }

    /// The value a rule is stored and removed by: lower-cased names and
    /// addresses, networks with host bits cleared, regexes as written.
    static func canonical(_ rule: ListRule) -> String {
        switch rule.pattern {
        case .network(let n): return n.description
        case .name(let p): return p.description
        case .address(let p): return p.description
        }
    }

    private func recordFilter(_ r: AdminRequest, forDelete: Bool = false, verb: String = "delete") throws -> RecordFilter {
        let policy = service?.engine.policy ?? self.policy
        var filter = RecordFilter(limit: max(1, min(r.limit ?? (forDelete ? 100_000 : 100), 100_000)))
        if let c = r.client, !c.isEmpty {
            if let a = IPAddress(c) { filter.network = policy.keying.network(of: a) }
            else if let n = IPNetwork(c) { filter.network = n.description }
            // A triplet keyed by SPF authorisation (see DNSPolicy) names its domain instead of a network.
            else if c.hasPrefix("spf:"), c.count <= 512, !c.contains(where: { $0.isWhitespace }) { filter.network = c.lowercased() }
            else { throw AdminError(message: "\"\(c)\" is not an IP address or network") }
        }
        if let s = r.sender { filter.sender = AddressNormalizer.sender(s, normalize: policy.normalizeSender) }
        if let s = r.recipient, !s.isEmpty { filter.recipient = AddressNormalizer.recipient(s) }
        if let s = r.state {
            guard let state = RecordFilter.State(rawValue: s) else {
                throw AdminError(message: "state \"\(s)\" is not pending, passed or any")
            }
            filter.state = state
        }
        if forDelete && filter.network == nil && filter.sender == nil && filter.recipient == nil {
            throw AdminError(message: "give at least one of client, sender, recipient to \(verb) records")
        }
        return filter
    }
}
