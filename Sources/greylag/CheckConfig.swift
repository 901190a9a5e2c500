import ArgumentParser
import Foundation
import GreylagCore
import GreylagServer

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration file and print the settings in force.")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.load()
        let p = config.policy
        print("""
            \(config.source): OK
            delay \(DurationText.format(p.delay)), retry window \(DurationText.format(p.retryWindow)), \
            pass TTL \(DurationText.format(p.passTTL)), client auto-whitelist \(p.clientAutowhitelist)
            keys: IPv4 /\(p.keying.ipv4Prefix), IPv6 /\(p.keying.ipv6Prefix), \
            sender normalisation \(p.normalizeSender ? "on" : "off")\(p.dryRun ? ", DRY RUN" : "")
            policy: \(config.policyListeners.map(\.description).joined(separator: ", ").ifEmpty("off")); \
            for the qmail helpers: \(config.policyHelperListeners.map(\.description).joined(separator: ", ").ifEmpty("none"))\
            \(Self.helperSockets(config))
            milter: \(config.milterListeners.map(\.description).joined(separator: ", ").ifEmpty("off")) \
            (defer \(config.milterReplies.deferCode), header \(config.milterReplies.header.rawValue))
            store: \(config.backendDescription)\(config.backend == .sqlite ? " (synchronous \(config.synchronous.rawValue))" : "")
            lists: \(Self.describe(config.lists))
            exemptions: authenticated clients \(config.lists.exemptAuthenticated ? "pass" : "are greylisted"), \
            trusted networks \(config.lists.trusted.rules.map(\.text).joined(separator: ", ").ifEmpty("none"))
            list files: \(config.listFiles.joined(separator: ", ").ifEmpty("none"))
            DNS checks: \(Self.describeDNS(config))
            admin socket: \(config.adminSocketPath ?? "off")
            dns: \(GreylagDaemon.describeResolver(config)) (changes need a restart)
            log: level \(config.logLevel), \(Self.logDestination(config))
            """)
    }
}

extension CheckConfig {
    /// How the helpers' unix sockets are made, when there are any.
    static func helperSockets(_ config: GreylagConfiguration) -> String {
        guard config.policyHelperListeners.contains(where: { if case .unix = $0 { true } else { false } }) else {
            return ""
        }
        let mode = String(config.helperSocketMode, radix: 8)
        return " (mode 0\(mode), group \(config.helperSocketGroup ?? "greylag's own")"
            + (config.helperListenIsDefault ? ", the default: skipped if it cannot be served)" : ")")
    }

    /// Where the daemon's log goes.
    static func logDestination(_ config: GreylagConfiguration) -> String {
        switch config.logDestination {
        case .stderr: return "to standard error (with <N> priorities when it is the journal)"
        case .syslog: return "to syslog at \(config.syslogSocket), facility \(config.syslogFacility)"
        }
    }

    /// SPF keying, DNS lists, selective mode and the deadline.
    static func describeDNS(_ c: GreylagConfiguration) -> String {
        let d = c.dns
        guard d.isActive || !c.dnsChecks.lists.isEmpty else { return "none" }
        var parts = ["SPF keying \(d.spfKeying.rawValue)"]
        let lists = c.dnsChecks.lists.map { "\($0.zone) (\($0.kind.rawValue), \($0.weight > 0 ? "+" : "")\($0.weight))" }
        parts.append("lists " + lists.joined(separator: ", ").ifEmpty("none"))
        if d.selective {
            var s = "selective: greylist at score \(d.greylistThreshold)"
            if d.suspectUnconfirmedReverse { s += ", unconfirmed reverse names" }
            if d.suspectDynamicNames {
                s += ", dynamic names (\(c.dnsChecks.dynamicNames.patterns.count) patterns, "
                    + "\(c.dnsChecks.dynamicNames.origin))"
            }
            parts.append(s)
        } else {
            parts.append("selective off")
        }
        parts.append("allow at score \(d.allowThreshold)")
        parts.append(d.rejectThreshold.map { "reject at score \($0)" } ?? "never reject")
        parts.append("deadline \(c.dnsChecks.deadline) s")
        return parts.joined(separator: "; ")
    }

    static func describe(_ l: ListRules) -> String {
        let builtin = l.whitelist.rules.filter { $0.origin.hasPrefix("builtin:") }.count
        return "whitelist \(l.whitelist.count) rules (\(builtin) built-in), blacklist \(l.blacklist.count), "
            + "scope \(l.scopeMode.rawValue) \(l.scope.count), dry run \(l.dryRun.count), [[rules]] \(l.rules.count)"
    }
}

extension String {
    func ifEmpty(_ other: String) -> String { isEmpty ? other : self }
}
