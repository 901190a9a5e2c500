import Foundation
import GreylagCore
import GreylagStore
import Logging

/// Reloads the configuration file, the list files and the manual entries
/// while the daemon runs: on SIGHUP, on `greylag reload`, and when one of
/// the files changes on disk. A configuration with errors is refused with
/// its errors logged, and the one in force stays. Connections are never
/// dropped: the new rules apply from the next query on.
actor ConfigReloader {
    private let source: String?
    private var current: GreylagConfiguration
    private let service: GreylistService
    /// The HTTP token in force, which the HTTP listener reads per request.
    private let httpToken: LiveValue<String?>?
    private let logger: Logger
    /// Last seen state of each watched file, to notice changes.
    private var signatures: [String: FileSignature?] = [:]
    /// Told when a reload starts (`RELOADING=1`) and ends (`READY=1`).
    private let notifier: SystemdNotifier?
    /// Tries to open a store that could not be opened, before a reload asked for by a person.
    private let reopenStore: (@Sendable (String) async -> Void)?

    init(configuration: GreylagConfiguration, service: GreylistService, httpToken: LiveValue<String?>? = nil,
         notifier: SystemdNotifier? = nil, reopenStore: (@Sendable (String) async -> Void)? = nil,
         logger: Logger) {
        self.source = configuration.source == "defaults" ? nil : configuration.source
        self.current = configuration
        self.service = service
        self.httpToken = httpToken
        self.notifier = notifier
        self.reopenStore = reopenStore
        self.logger = logger
        self.signatures = Self.signatures(of: Self.watched(configuration))
    }

    /// Reloads now (after trying to open a store that could not be
    /// opened, when `reopen`); returns whether the new configuration is in
    /// force and a summary for the admin command. systemd hears
    /// `RELOADING=1` first and `READY=1` at the end, also when the new
    /// configuration is refused (the one in force serves on).
    @discardableResult
    func reload(trigger: String, reopen: Bool = true) async -> (ok: Bool, summary: String) {
        notifier?.reloading(status: "reloading (\(trigger))")
        if reopen, let reopenStore { await reopenStore(trigger) }
        let result = await reloadConfiguration(trigger: trigger)
        if let notifier {
            var status = result.ok ? String(result.summary.prefix { $0 != "\n" })
                : "reload (\(trigger)) refused, the configuration in force stays"
            if service.health.unavailableReason != nil {
                status += "; STORE NOT OPEN, failure mode \(current.failureMode.rawValue)"
            }
            notifier.ready(status: status)
        }
        return result
    }

    private func reloadConfiguration(trigger: String) async -> (ok: Bool, summary: String) {
        guard let source else {
            // No configuration file: only the manual entries can change.
            await reloadManualEntries()
            let summary = "no configuration file to reload (\(trigger)); \(service.manualEntries.count) manual entries"
            logger.notice("\(summary)")
            return (true, summary)
        }
        // The files as they are before reading them: a change made while
        // the reload runs is noticed by the next check, not taken as seen.
        let before = Self.signatures(of: Self.watched(current))
        let new: GreylagConfiguration
        do {
            new = try ConfigurationLoader.load(path: source)
        } catch {
            let summary = "reload (\(trigger)) refused, the configuration in force stays"
            logger.error("\(summary):\n\(error)")
            signatures = before  // do not retry until the files change again
            return (false, "\(summary):\n\(error)")
        }
        for key in Self.restartOnly(current, new) {
            logger.warning("reload: \(key) changed; it takes effect at the next restart")
        }
        if current.httpToken != new.httpToken, let httpToken {
            httpToken.set(new.httpToken)
            let change = new.httpToken == nil ? "removed: the HTTP API is read-only" : "replaced"
            logger.notice("reload: http.token \(change); it is in force for the next request")
            if let address = current.httpListener { GreylagDaemon.warnIfOpen(address, token: new.httpToken, logger: logger) }
        }
        var applied = new
        applied.policyListeners = current.policyListeners
        applied.policyHelperListeners = current.policyHelperListeners
        applied.helperListenIsDefault = current.helperListenIsDefault
        applied.helperSocketMode = current.helperSocketMode
        applied.helperSocketGroup = current.helperSocketGroup
        applied.milterListeners = current.milterListeners
        applied.greylistdListeners = current.greylistdListeners
        applied.greylistdSocketMode = current.greylistdSocketMode
        applied.storePath = current.storePath
        applied.backend = current.backend
        applied.adminSocket = current.adminSocket
        // Restart-only settings stay as they run, so every later reload names
        // them again until a restart puts them in force.
        applied.adminSocketMode = current.adminSocketMode
        applied.httpListener = current.httpListener
        applied.httpSocketMode = current.httpSocketMode
        applied.httpMaxConnections = current.httpMaxConnections
        applied.httpIdleTimeout = current.httpIdleTimeout
        applied.httpRequestTimeout = current.httpRequestTimeout
        applied.historyKeep = current.historyKeep
        applied.sizesInterval = current.sizesInterval
        applied.statsInterval = current.statsInterval
        applied.socketMode = current.socketMode
        applied.milterSocketMode = current.milterSocketMode
        applied.idleTimeout = current.idleTimeout
        applied.policyMaxConnections = current.policyMaxConnections
        applied.milterMaxConnections = current.milterMaxConnections
        applied.synchronous = current.synchronous
        applied.threads = current.threads
        applied.storeTimeout = current.storeTimeout
        applied.failureMode = current.failureMode
        applied.expiryInterval = current.expiryInterval
        applied.expiryBatch = current.expiryBatch
        applied.logLevel = current.logLevel
        applied.logDestination = current.logDestination
        applied.syslogFacility = current.syslogFacility
        applied.syslogSocket = current.syslogSocket
        applied.watchInterval = current.watchInterval
        service.reconfigure(policy: new.policy, lists: new.lists, replies: GreylagDaemon.replies(new),
                            milterReplies: GreylagDaemon.milterReplies(new), dns: new.dns, checks: new.dnsChecks)
        await reloadManualEntries()
        current = applied
        // Files the new configuration names for the first time are taken as they are now.
        signatures = [:]
        for path in Self.watched(current) { signatures.updateValue(before[path] ?? FileSignature(path: path), forKey: path) }
        let summary = "reloaded \(source) (\(trigger)): " + Self.describe(new.lists)
            + ", \(service.manualEntries.count) manual"
        logger.notice("\(summary)")
        return (true, summary)
    }

    private func reloadManualEntries() async {
        do {
            try await service.refreshManualEntries()
        } catch {
            logger.error("reload: cannot read manual entries, keeping the ones in force: \(error)")
        }
    }

    /// Reloads when a watched file changed and has stayed unchanged for one
    /// more interval (so a file being written is not read half-way).
    func checkFiles() async {
        let now = Self.signatures(of: Array(signatures.keys))
        guard now != signatures else { return }
        try? await Task.sleep(for: .seconds(0.2))
        let settled = Self.signatures(of: Array(signatures.keys))
        guard settled == now else { return }
        let changed = now.filter { signatures[$0.key].flatMap { $0 } != $0.value }.map(\.key).sorted()
        await reload(trigger: "changed: " + changed.joined(separator: ", "), reopen: false)
    }

    /// The configuration file and every list file it names.
    static func watched(_ c: GreylagConfiguration) -> [String] {
        (c.source == "defaults" ? [] : [c.source]) + c.listFiles
    }

    static func describe(_ l: ListRules) -> String {
        "\(l.whitelist.count) whitelist, \(l.blacklist.count) blacklist, \(l.trusted.count) trusted, "
            + "\(l.scope.count) scope (\(l.scopeMode.rawValue)), \(l.dryRun.count) dry-run rules, \(l.rules.count) [[rules]]"
    }

    /// Settings a running daemon cannot change.
    static func restartOnly(_ a: GreylagConfiguration, _ b: GreylagConfiguration) -> [String] {
        var out: [String] = []
        if a.policyListeners != b.policyListeners { out.append("policy.listen") }
        if a.policyHelperListeners != b.policyHelperListeners { out.append("policy.helper_listen") }
        if a.helperSocketMode != b.helperSocketMode { out.append("policy.helper_socket_mode") }
        if a.helperSocketGroup != b.helperSocketGroup { out.append("policy.helper_socket_group") }
        if a.milterListeners != b.milterListeners { out.append("milter.listen") }
        if a.greylistdListeners != b.greylistdListeners { out.append("greylistd.listen") }
        if a.greylistdSocketMode != b.greylistdSocketMode { out.append("greylistd.socket_mode") }
        if a.storePath != b.storePath { out.append("store.path") }
        if a.backend != b.backend { out.append("store.backend and its connection") }
        if a.synchronous != b.synchronous { out.append("store.synchronous") }
        if a.threads != b.threads { out.append("server.threads") }
        if a.adminSocket != b.adminSocket { out.append("admin.socket") }
        if a.adminSocketMode != b.adminSocketMode { out.append("admin.socket_mode") }
        if a.socketMode != b.socketMode { out.append("policy.socket_mode") }
        if a.idleTimeout != b.idleTimeout { out.append("policy.idle_timeout") }
        if a.policyMaxConnections != b.policyMaxConnections { out.append("policy.max_connections") }
        if a.milterMaxConnections != b.milterMaxConnections { out.append("milter.max_connections") }
        if a.storeTimeout != b.storeTimeout { out.append("store.timeout") }
        if a.failureMode != b.failureMode { out.append("store.failure_mode") }
        if a.reopenInterval != b.reopenInterval { out.append("store.reopen_interval") }
        if a.expiryInterval != b.expiryInterval || a.expiryBatch != b.expiryBatch { out.append("store.expiry_*") }
        if a.logLevel != b.logLevel { out.append("log.level") }
        if a.logDestination != b.logDestination { out.append("log.destination") }
        if a.syslogFacility != b.syslogFacility { out.append("log.syslog_facility") }
        if a.syslogSocket != b.syslogSocket { out.append("log.syslog_socket") }
        if a.watchInterval != b.watchInterval { out.append("reload.watch_interval") }
        if a.milterSocketMode != b.milterSocketMode { out.append("milter.socket_mode") }
        if a.sizesInterval != b.sizesInterval { out.append("store.sizes_interval") }
        if a.statsInterval != b.statsInterval { out.append("log.stats_interval") }
        if a.httpListener != b.httpListener { out.append("http.listen") }
        if a.httpSocketMode != b.httpSocketMode { out.append("http.socket_mode") }
        if a.httpMaxConnections != b.httpMaxConnections { out.append("http.max_connections") }
        if a.httpIdleTimeout != b.httpIdleTimeout { out.append("http.idle_timeout") }
        if a.httpRequestTimeout != b.httpRequestTimeout { out.append("http.request_timeout") }
        if a.historyKeep != b.historyKeep { out.append("http.history_keep") }
        if a.resolverSettings != b.resolverSettings { out.append("dns (servers, timeout, cache_entries or the resolv.conf)") }
        return out
    }

    /// `1s`, `0.5s`.
    static func seconds(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? "\(Int64(v))s" : "\(v)s"
    }

    static func signatures(of paths: [String]) -> [String: FileSignature?] {
        var out: [String: FileSignature?] = [:]
        for p in paths { out[p] = FileSignature(path: p) }
        return out
    }
}

/// What identifies a file's content cheaply: inode, size and change time.
struct FileSignature: Hashable, Sendable {
    var inode: UInt64
    var size: Int64
    var seconds: Int
    var nanoseconds: Int

    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        seconds = st.st_mtim.tv_sec
        nanoseconds = st.st_mtim.tv_nsec
    }
}
