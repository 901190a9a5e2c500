import Foundation
import GreylagCore
import GreylagServer
import GreylagStore
import Synchronization
import Testing

/// A policy request with SMTP AUTH and client name fields.
func request(client: String = "192.0.2.7", name: String = "unknown", sender: String = "alice@example.org",
             recipient: String = "bob@example.net", sasl: String = "") -> [(String, String)] {
    var r = rcptRequest(client: client, sender: sender, recipient: recipient)
    r[4] = ("client_name", name)
    r.append(("sasl_username", sasl))
    return r
}

/// Uses a loaded configuration file in a test daemon, keeping the test's
/// store path and listener.
func using(_ loaded: GreylagConfiguration) -> (inout GreylagConfiguration) -> Void {
    { c in
        let store = c.storePath, listeners = c.policyListeners, milters = c.milterListeners, http = c.httpListener
        c = loaded
        c.storePath = store
        c.policyListeners = listeners
        c.milterListeners = milters
        c.httpListener = http
    }
}

let defer300 = "action=DEFER_IF_PERMIT Greylisted, please try again in 300 seconds"

@Suite struct ListsThroughThePolicySocketTests {
    @Test func everyListDecisionAnswersAsItShould() async throws {
        let config = try ConfigurationLoader.parse("""
            [whitelist]
            builtin = false
            client_names = ["friendly.example"]
            lists = ["partners"]
            [blacklist]
            senders = ["spammer@bad.example"]
            [policy]
            reject_text = "Mail from {sender} refused"
            [exemptions]
            trusted_networks = ["10.0.0.0/8"]
            [scope]
            recipients = ["nogrey@example.net"]
            [dry_run]
            recipient_domains = ["trial.example"]
            [lists.partners]
            sender_domains = ["partner.example"]
            """, file: "/etc/greylag/greylag.toml")
        let log = CapturedLog()
        try await withDaemon(configure: using(config), log: log) { addresses, _ in
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)
            #expect(try await c.ask(request(sender: "spammer@bad.example"))
                    == "action=REJECT Mail from spammer@bad.example refused")
            #expect(try await c.ask(request(name: "mx3.friendly.example")) == "action=DUNNO")
            #expect(try await c.ask(request(sender: "news@partner.example")) == "action=DUNNO")
            #expect(try await c.ask(request(sasl: "alice")) == "action=DUNNO")
            #expect(try await c.ask(request(client: "10.1.2.3")) == "action=DUNNO")
            #expect(try await c.ask(request(recipient: "nogrey@example.net")) == "action=DUNNO")
            #expect(try await c.ask(request(recipient: "x@trial.example")) == "action=DUNNO")
            // Authentication is checked before the blacklist.
            #expect(try await c.ask(request(sender: "spammer@bad.example", sasl: "alice")) == "action=DUNNO")
            // A look-alike of a whitelisted name is greylisted.
            #expect(try await c.ask(request(name: "notfriendly.example", recipient: "c@example.net")) == defer300)
        }
        #expect(log.contains("reject: client=192.0.2.7 sender=<spammer@bad.example> recipient=<bob@example.net> "
                             + "reason=blacklisted rule=\"/etc/greylag/greylag.toml:6 blacklist.senders (spammer@bad.example)\""))
        #expect(log.contains("reason=whitelisted rule=\"/etc/greylag/greylag.toml:3 whitelist.client_names (friendly.example)\""))
        #expect(log.contains("reason=whitelisted rule=\"/etc/greylag/greylag.toml:16 lists.partners.sender_domains (partner.example)\""))
        #expect(log.contains("reason=authenticated sasl_user=alice"))
        #expect(log.contains("reason=trusted_client rule=\"/etc/greylag/greylag.toml:10 exemptions.trusted_networks (10.0.0.0/8)\""))
        #expect(log.contains("reason=recipient_opted_out rule=\"/etc/greylag/greylag.toml:12 scope.recipients (nogrey@example.net)\""))
        #expect(log.contains("would defer (dry run), passing: client=192.0.2.7 network=192.0.2.0/24"))
    }

    @Test func optInGreylistsOnlyTheListedRecipients() async throws {
        let config = try ConfigurationLoader.parse("""
            [scope]
            mode = "opt-in"
            recipient_domains = ["strict.example"]
            [exemptions]
            trusted_networks = []
            """, file: "t.toml")
        try await withDaemon(configure: using(config)) { addresses, _ in
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request(recipient: "a@strict.example")) == defer300)
            #expect(try await c.ask(request(recipient: "a@relaxed.example")) == "action=DUNNO")
        }
    }

    @Test func builtinWhitelistPassesALargeProviderByDefault() async throws {
        let defaults = ConfigurationLoader.defaults()
        #expect(defaults.lists.whitelist.count > 20)
        try await withDaemon(configure: using(defaults)) { addresses, _ in
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request(name: "mail-wr1-f54.google.com")) == "action=DUNNO")
            #expect(try await c.ask(request(name: "unknown")) == defer300)
            // Loopback is trusted by default.
            #expect(try await c.ask(request(client: "127.0.0.1")) == "action=DUNNO")
        }
        let off = try ConfigurationLoader.parse("[whitelist]\nbuiltin = false\n", file: "t.toml")
        try await withDaemon(configure: using(off)) { addresses, _ in
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request(name: "mail-wr1-f54.google.com")) == defer300)
        }
    }
}

@Suite struct AdminCommandTests {
    func admin(_ socket: String, _ r: AdminRequest) async throws -> AdminResponse {
        try await AdminClient.request(r, socket: socket, timeout: 10)
    }

    @Test func manualEntriesTakeEffectAtOnce() async throws {
        let dir = TemporaryDirectory()
        let socket = dir.path + "/admin.sock"
        let log = CapturedLog()
        try await withDaemon(configure: { $0.adminSocket = .path(socket) }, log: log) { addresses, _ in
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)
            let added = try await admin(socket, AdminRequest(command: .add, list: .whitelist, field: .client,
                                                       value: "192.0.2.99/24", comment: "partner", expiresIn: 86_400))
            #expect(added.ok && added.live == true)
            #expect(added.entries?.first?.value == "192.0.2.0/24")  // stored canonical
            #expect(try await c.ask(request(recipient: "new@example.net")) == "action=DUNNO")
            let removed = try await admin(socket, AdminRequest(command: .remove, list: .whitelist, field: .client,
                                                         value: "192.0.2.0/24"))
            #expect(removed.ok)
            #expect(try await c.ask(request(recipient: "new2@example.net")) == defer300)

            _ = try await admin(socket, AdminRequest(command: .add, list: .blacklist, field: .senderDomain, value: "Bad.Example"))
            #expect(try await c.ask(request(sender: "x@bad.example")) == "action=REJECT Refused by greylag policy")
            let entries = try await admin(socket, AdminRequest(command: .entries, list: .blacklist))
            #expect(entries.entries?.map(\.value) == ["bad.example"])

            let bad = try await admin(socket, AdminRequest(command: .add, list: .whitelist, field: .client, value: "192.0.2.300"))
            #expect(!bad.ok && bad.error?.contains("is not an IP address or CIDR network") == true)
            let missing = try await admin(socket, AdminRequest(command: .remove, list: .whitelist, field: .client, value: "192.0.2.1"))
            #expect(!missing.ok && missing.error == "no whitelist entry client 192.0.2.1")

            let stats = try #require(try await admin(socket, AdminRequest(command: .stats)).stats)
            #expect(stats.decisions?.byAction["defer"] == 2)
            #expect(stats.decisions?.byAction["reject"] == 1)
            #expect(stats.decisions?.byReason["whitelisted"] == 1)
            #expect(stats.pendingTriplets == 2)
            #expect(stats.manualBlacklist == 1 && stats.manualWhitelist == 0)

            let records = try await admin(socket, AdminRequest(command: .records, client: "192.0.2.200", state: "pending"))
            #expect(records.records?.map(\.recipient).sorted() == ["bob@example.net", "new2@example.net"])
            let deleted = try await admin(socket, AdminRequest(command: .delete, recipient: "bob@example.net"))
            #expect(deleted.message == "deleted 1 record(s)")
            #expect(try await c.ask(request()) == defer300)  // forgotten, so new again
            let refused = try await admin(socket, AdminRequest(command: .delete))
            #expect(!refused.ok)
        }
        #expect(log.contains("reason=whitelisted rule=\"manual #1 (192.0.2.0/24)\""))
        #expect(!FileManager.default.fileExists(atPath: socket))  // removed at shutdown
    }

    @Test func concurrentAddsAreAllInForce() async throws {
        let dir = TemporaryDirectory()
        let socket = dir.path + "/admin.sock"
        try await withDaemon(configure: { $0.adminSocket = .path(socket) }) { addresses, _ in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 1...20 {
                    group.addTask {
                        try await AdminClient.request(AdminRequest(command: .add, list: .whitelist, field: .client,
                                                                   value: "10.9.\(i).0/24"), socket: socket).ok
                    }
                }
                for try await ok in group { #expect(ok) }
            }
            let c = try await PolicyTestClient(addresses[0])
            for i in 1...20 {
                #expect(try await c.ask(request(client: "10.9.\(i).1")) == "action=DUNNO", "entry \(i)")
            }
        }
    }

    @Test func garbageOnTheAdminSocketGetsAnErrorAndTheDaemonCarriesOn() async throws {
        let dir = TemporaryDirectory()
        let socket = dir.path + "/admin.sock"
        try await withDaemon(configure: { $0.adminSocket = .path(socket) }) { addresses, _ in
            let answer = try await Task.detached { try rawUnix(socket, "this is not json\n") }.value
            #expect(answer.contains("\"ok\":false") && answer.contains("unreadable request"))
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)
        }
    }

    @Test func withoutADaemonTheStoreIsChangedDirectly() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.path + "/greylag.db")
        let service = AdminService(store: store, service: nil, policy: GreylistPolicy())
        let r = await service.handle(AdminRequest(command: .add, list: .whitelist, field: .senderDomain, value: "example.org"))
        #expect(r.ok && r.live == false)
        #expect(try await store.manualEntries().map(\.value) == ["example.org"])
        try await store.close()
        // A daemon started afterwards applies it.
        try await withDaemon(configure: { $0.storePath = dir.path + "/greylag.db" }) { addresses, _ in
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request(sender: "a@example.org")) == "action=DUNNO")
        }
    }
}

/// Sends raw bytes to a unix socket and reads the answer until EOF.
func rawUnix(_ path: String, _ text: String) throws -> String {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: Array(path.utf8))
        raw[path.utf8.count] = 0
    }
    let ok = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard ok == 0 else { throw TestFailure("cannot connect to \(path)") }
    var tv = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    _ = text.withCString { write(fd, $0, strlen($0)) }
    var out = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fd, &buf, buf.count)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

@Suite struct ReloadTests {
    /// Rewrites the file with a later modification time.
    func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func waitFor(_ what: String, timeout: Double = 30, log: CapturedLog? = nil,
                 _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        let lines = log?.all.filter { $0.contains("reload") || $0.contains("error") }.joined(separator: "\n") ?? ""
        throw TestFailure("timed out waiting for \(what); log:\n\(lines)")
    }

    @Test func aChangedListFileIsReloadedAndABadConfigIsRefused() async throws {
        let dir = TemporaryDirectory()
        let configPath = dir.path + "/greylag.toml"
        let listPath = dir.path + "/clients"
        try write("# nothing yet\n", to: listPath)
        try write("[whitelist]\nbuiltin = false\nclient_files = [\"clients\"]\n[reload]\nwatch_interval = 1\n",
                  to: configPath)
        var loaded = try ConfigurationLoader.load(path: configPath)
        loaded.watchInterval = 0.1
        let log = CapturedLog()
        try await withDaemon(configure: using(loaded), log: log) { addresses, _ in
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)
            try write("192.0.2.0/24\n", to: listPath)
            try await waitFor("the list file reload", log: log) {
                try await c.ask(request(recipient: "r\(UUID().uuidString.prefix(6))@example.net")) == "action=DUNNO"
            }
            #expect(log.contains("/clients:1 (192.0.2.0/24)") || log.contains("clients:1 (192.0.2.0/24)"))
            // A bad line: the reload is refused and the rules in force stay.
            try write("192.0.2.0/24\n300.1.1.1/8 oops\n", to: listPath)
            try await waitFor("the refusal", log: log) { log.contains("refused, the configuration in force stays") }
            #expect(log.contains("clients:2: \"300.1.1.1/8 oops\" does not look like a host name, address or network"))
            #expect(try await c.ask(request(recipient: "after-bad@example.net")) == "action=DUNNO")
            // Fixed again: the new file is in force.
            try write("198.51.100.0/24\n", to: listPath)
            try await waitFor("the second reload", log: log) {
                try await c.ask(request(recipient: "r\(UUID().uuidString.prefix(6))@example.net")) == defer300
            }
        }
    }

    @Test func reloadUnderLoadLosesNoQuery() async throws {
        let dir = TemporaryDirectory()
        let configPath = dir.path + "/greylag.toml"
        @Sendable func config(_ n: Int) -> String {
            "[whitelist]\nbuiltin = false\nsender_domains = [\"gen\(n).example\"]\n"
        }
        try write(config(0), to: configPath)
        let socket = dir.path + "/admin.sock"
        var loaded = try ConfigurationLoader.load(path: configPath)
        loaded.adminSocket = .path(socket)
        loaded.watchInterval = 0
        try await withDaemon(configure: using(loaded)) { addresses, _ in
            let stop = ManualFlag()
            let load = Task {
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for w in 0..<8 {
                        group.addTask {
                            let c = try await PolicyTestClient(addresses[0])
                            var n = 0
                            while !stop.isSet {
                                let reply = try await c.ask(request(sender: "s\(w)-\(n)@other.example"))
                                guard reply?.hasPrefix("action=") == true else { throw TestFailure("bad reply \(String(describing: reply))") }
                                n += 1
                            }
                            return n
                        }
                    }
                    var total = 0
                    for try await n in group { total += n }
                    return total
                }
            }
            for gen in 1...10 {
                try write(config(gen), to: configPath)
                let r = try await AdminClient.request(AdminRequest(command: .reload), socket: socket, timeout: 10)
                #expect(r.ok, "\(r.error ?? "")")
                try await Task.sleep(for: .milliseconds(30))
            }
            stop.set()
            let answered = try await load.value
            #expect(answered > 100)
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request(sender: "a@gen10.example")) == "action=DUNNO")
            #expect(try await c.ask(request(sender: "a@gen9.example")) == defer300)
        }
    }
}

/// A flag set once, read from many tasks.
final class ManualFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
