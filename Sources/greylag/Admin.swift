import ArgumentParser
import Foundation
import GreylagCore
import GreylagServer
import GreylagStore

/// Runs an admin request: through the running daemon's admin socket when
/// one answers (the change is then in force at once), else directly on the
/// store named by the configuration.
enum AdminRunner {
    static func run(_ request: AdminRequest, options: ConfigOptions) async throws -> AdminResponse {
        let config = try options.load()
        if let path = config.adminSocketPath {
            do {
                return try await AdminClient.request(request, socket: path)
            } catch AdminClient.Failure.notRunning {
                // fall through to the store
            } catch {
                throw CleanExit.message("greylag: \(error)")
            }
        }
        let store = try await GreylagDaemon.openStore(config, loop: nil)
        let response = await AdminService(store: store, service: nil, policy: config.policy).handle(request)
        try await store.close()
        return response
    }

    /// Prints the error of a failed response and exits 1; returns the
    /// response when it succeeded.
    @discardableResult
    static func checked(_ response: AdminResponse) throws -> AdminResponse {
        guard response.ok else {
            FileHandle.standardError.write(Data("greylag: \(response.error ?? "failed")\n".utf8))
            throw ExitCode(1)
        }
        return response
    }

    static func printJSON(_ response: AdminResponse) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let data = try? encoder.encode(response) { print(String(decoding: data, as: UTF8.self)) }
    }

    /// A time as `2026-11-21 10:04:05Z`.
    static func time(_ t: Int64) -> String {
        var seconds = time_t(t)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec)
    }

    static func field(_ text: String) throws -> SelectorField {
        let t = text.lowercased().replacingOccurrences(of: "-", with: "_")
        if let f = SelectorField(rawValue: t) ?? SelectorField(configKey: t) { return f }
        throw ValidationError("unknown field \"\(text)\"; use one of "
                              + SelectorField.allCases.map(\.rawValue).joined(separator: ", "))
    }
}

/// `greylag whitelist ...` and `greylag blacklist ...` share these.
protocol ListCommandFamily {
    static var list: ListKind { get }
}

struct ListAdd<Family: ListCommandFamily>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "add", abstract: "Add a manual \(Family.list.rawValue) entry (in force at once).",
                             discussion: """
                                 FIELD is one of client, client_name, helo, sender, sender_domain, recipient, \
                                 recipient_domain; VALUE takes the forms of the configuration keys, e.g. \
                                 "client 192.0.2.0/24", "sender_domain example.com", "recipient postmaster@".
                                 """)
    }

    @OptionGroup var options: ConfigOptions
    @Argument(help: "What the entry looks at.") var field: String
    @Argument(help: "The address, network, name, domain or /regex/.") var value: String
    @Option(help: "Remove the entry after this long (e.g. 12h, 7d).") var expires: String?
    @Option(help: "A note kept with the entry.") var comment: String?

    func run() async throws {
        var seconds: Int64? = nil
        if let expires {
            switch DurationText.read(expires) {
            case .seconds(let s) where s > 0: seconds = s
            case .tooLong: throw ValidationError("--expires \(expires) is out of range: at most 10 years")
            default: throw ValidationError("\"\(expires)\" is not a duration such as 12h or 7d")
            }
        }
        let r = try AdminRunner.checked(await AdminRunner.run(AdminRequest(
            command: .add, list: Family.list, field: try AdminRunner.field(field), value: value,
            comment: comment, expiresIn: seconds), options: options))
        print("added \(r.message ?? "")" + (r.entries?.first?.expires.map { ", expires \(AdminRunner.time($0))" } ?? ""))
        if r.live != true {
            print("note: greylag is not running (or its admin socket is off); the entry applies when it starts or reloads")
        }
    }
}

struct ListRemove<Family: ListCommandFamily>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "remove", abstract: "Remove a manual \(Family.list.rawValue) entry.")
    }

    @OptionGroup var options: ConfigOptions
    @Argument var field: String
    @Argument var value: String

    func run() async throws {
        let r = try AdminRunner.checked(await AdminRunner.run(AdminRequest(
            command: .remove, list: Family.list, field: try AdminRunner.field(field), value: value), options: options))
        print(r.message ?? "removed")
    }
}

struct ListShow<Family: ListCommandFamily>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "list", abstract: "Show the manual \(Family.list.rawValue) entries.")
    }

    @OptionGroup var options: ConfigOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let r = try AdminRunner.checked(await AdminRunner.run(AdminRequest(command: .entries, list: Family.list),
                                                              options: options))
        if json { return AdminRunner.printJSON(r) }
        let now = Int64(Date().timeIntervalSince1970)
        for e in r.entries ?? [] {
            var line = "#\(e.id)\t\(e.field.rawValue)\t\(e.value)\tadded \(AdminRunner.time(e.created))"
            if let x = e.expires { line += x <= now ? "\texpired \(AdminRunner.time(x))" : "\texpires \(AdminRunner.time(x))" }
            if !e.comment.isEmpty { line += "\t# \(e.comment)" }
            print(line)
        }
    }
}

enum WhitelistFamily: ListCommandFamily { static let list = ListKind.whitelist }
enum BlacklistFamily: ListCommandFamily { static let list = ListKind.blacklist }

struct WhitelistCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whitelist", abstract: "Manual whitelist entries: never greylisted.",
        subcommands: [ListAdd<WhitelistFamily>.self, ListRemove<WhitelistFamily>.self, ListShow<WhitelistFamily>.self])
}

struct BlacklistCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blacklist", abstract: "Manual blacklist entries: refused with the reject reply.",
        subcommands: [ListAdd<BlacklistFamily>.self, ListRemove<BlacklistFamily>.self, ListShow<BlacklistFamily>.self])
}

/// Options that select records.
struct RecordOptions: ParsableArguments {
    @Option(help: "Client address (its network is used) or network such as 192.0.2.0/24.") var client: String?
    @Option(help: "Envelope sender (normalised as greylag stores it).") var sender: String?
    @Option(help: "Envelope recipient.") var recipient: String?
}

struct ListRecords: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Show greylisting records, most recently seen first.")

    @OptionGroup var options: ConfigOptions
    @OptionGroup var filter: RecordOptions
    @Option(help: "pending, passed or any.") var state = "any"
    @Option(help: "At most this many records.") var limit = 100
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let r = try AdminRunner.checked(await AdminRunner.run(AdminRequest(
            command: .records, client: filter.client, sender: filter.sender, recipient: filter.recipient,
            state: state, limit: limit), options: options))
        if json { return AdminRunner.printJSON(r) }
        print("network\tsender\trecipient\tstate\tfirst seen\tlast seen\tblocked\tpassed\torigin")
        for x in r.records ?? [] {
            print("\(x.network)\t\(x.sender)\t\(x.recipient)\t\(x.passedCount > 0 ? "passed" : "pending")\t"
                  + "\(AdminRunner.time(x.firstSeen))\t\(AdminRunner.time(x.lastSeen))\t\(x.blockedCount)\t"
                  + "\(x.passedCount)\t\(x.origin)")
        }
    }
}

struct DeleteRecords: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete greylisting records matching every given option.")

    @OptionGroup var options: ConfigOptions
    @OptionGroup var filter: RecordOptions

    func run() async throws {
        let r = try AdminRunner.checked(await AdminRunner.run(AdminRequest(
            command: .delete, client: filter.client, sender: filter.sender, recipient: filter.recipient),
            options: options))
        print(r.message ?? "done")
    }
}

struct ReleaseRecords: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Let waiting (deferred, not yet passed) triplets matching every given option through at their next retry.",
        discussion: """
            The next retry of each released triplet passes at once instead of waiting for the delay; \
            triplets that passed already are left alone. Give at least one of --client, --sender, --recipient.
            """)

    @OptionGroup var options: ConfigOptions
    @OptionGroup var filter: RecordOptions

    func run() async throws {
        let r = try AdminRunner.checked(await AdminRunner.run(AdminRequest(
            command: .release, client: filter.client, sender: filter.sender, recipient: filter.recipient),
            options: options))
        print("released \(r.records?.count ?? 0) waiting triplet(s):")
        for x in r.records ?? [] { print("\(x.network)\t\(x.sender)\t\(x.recipient)") }
    }
}

struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Counts of decisions (since the daemon started) and of records.")

    @OptionGroup var options: ConfigOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let r = try AdminRunner.checked(await AdminRunner.run(AdminRequest(command: .stats), options: options))
        if json { return AdminRunner.printJSON(r) }
        guard let s = r.stats else { return }
        if let d = s.decisions {
            let whitelisted = (d.byReason["whitelisted"] ?? 0) + (d.byReason["client_autowhitelisted"] ?? 0)
            let exempt = (d.byReason["authenticated"] ?? 0) + (d.byReason["trusted_client"] ?? 0)
            print("decisions since start: deferred \(d.byAction["defer"] ?? 0), passed \(d.byAction["pass"] ?? 0), "
                  + "rejected \(d.byAction["reject"] ?? 0)")
            print("  of the passes: whitelisted \(whitelisted), exempt (authenticated/trusted) \(exempt), "
                  + "after the delay \(d.byReason["delay_elapsed"] ?? 0), known triplets \(d.byReason["known_triplet"] ?? 0), "
                  + "dry run \(d.dryRunPasses)")
            let reasons = d.byReason.filter { $0.value > 0 }.sorted { $0.key < $1.key }
                .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print("  by reason: \(reasons.isEmpty ? "none yet" : reasons)")
            if let f = s.storeFailures { print("  answered by the failure mode (store failed or too slow): \(f)") }
        } else {
            print("decisions: greylag is not running, no counts")
        }
        if let why = s.storeUnavailable {
            print("store: UNAVAILABLE, it could not be opened: \(why)")
            print("  every decision that needs the store gets the failure mode; see \"Recovering a broken store\" in docs/store.md")
        } else if s.storeDegraded == true {
            print("store: DEGRADED, it fails or answers too slowly; decisions that need it get the failure mode")
        }
        if let pending = s.pendingTriplets, let passed = s.passedTriplets, let clients = s.autowhitelistedClients {
            print("triplets: pending \(pending), passed \(passed); auto-whitelisted client networks \(clients)")
        } else if s.storeUnavailable == nil {
            print("triplets: unknown, the store did not answer: \(s.storeError ?? "no reason given")")
        }
        var lists = ""
        if let w = s.manualWhitelist, let b = s.manualBlacklist {
            lists = "manual entries: whitelist \(w), blacklist \(b)"
        }
        if let w = s.configuredWhitelistRules, let b = s.configuredBlacklistRules {
            lists += (lists.isEmpty ? "" : "; ") + "configured rules: whitelist \(w), blacklist \(b)"
        }
        if !lists.isEmpty { print(lists) }
    }
}

struct Reload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the running daemon reload its configuration, list files and manual entries.")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let r = try AdminRunner.checked(await AdminRunner.run(AdminRequest(command: .reload), options: options))
        print(r.message ?? "reloaded")
    }
}
