import Foundation
import GreylagCore
import GreylagTestSupport
import GreylagMigrate
import Testing

/// postgrey, sqlgrey, the qmail plugin and jgreylist: their settings, their
/// notes, and the migrated configuration deciding as the old tool did.
@Suite struct OtherToolsMigrationTests {
    let t0: Int64 = 1_800_000_000

    @Test func postgreyCommandLine() throws {
        let args = String(decoding: try fixture("postgrey-args.txt"), as: UTF8.self)
        let m = PostgreyOptions.migrate(arguments: args, read: { _ in nil })
        #expect(m.strings("policy", "listen") == ["127.0.0.1:10023"])
        #expect(m.string("greylist", "delay") == "1m")
        #expect(m.string("greylist", "pass_ttl") == "21d")
        #expect(m.string("greylist", "retry_window") == "12h")
        #expect(m.integer("greylist", "client_autowhitelist") == 3)
        #expect(m.integer("greylist", "ipv4_prefix") == 32)
        #expect(m.string("policy", "defer_text") == "Greylisted for {seconds} seconds")
        #expect(m.string("policy", "hostname") == "mx.example.net")
        #expect(m.notes.map(\.description).contains("--args:1: not carried over: --bogus-option: unknown postgrey option"))
        #expect(!m.notes(containing: "--privacy: greylag stores addresses").isEmpty)
        #expect(!m.notes(containing: "cannot read the list file /etc/postgrey/whitelist_clients;").isEmpty)
        #expect(m.notes(containing: "whitelist_clients.local").isEmpty)  // postgrey does not miss it either
        #expect(m.followUps.first?.hasPrefix("db_dump /var/lib/postgrey/postgrey.db > postgrey.dump") == true)
    }

    @Test func postgreyDelayOf60SecondsPassesAfter60Seconds() throws {
        let m = PostgreyOptions.migrate(arguments: "--inet=10023 --delay=60 --whitelist-clients=/nonexistent", read: { _ in nil })
        let w = try Written(m)
        defer { w.remove() }
        var store = MemoryStore()
        let q = rcpt("192.0.2.7")
        #expect(store.ask(w.engine, q, at: t0).action == .defer)
        #expect(store.ask(w.engine, q, at: t0 + 30).action == .defer)
        let passed = store.ask(w.engine, q, at: t0 + 60)
        #expect(passed.action == .pass && passed.reason == .delayElapsed)
        // /24 keying, as postgrey: another host of the same network is the same triplet.
        #expect(store.ask(w.engine, rcpt("192.0.2.99"), at: t0 + 61).action == .pass)
        #expect(w.config.policyListeners.map(\.description) == ["127.0.0.1:10023"])
    }

    @Test func debiansDefaultPostgrey() throws {
        guard let bytes = try debianFile("/etc/default/postgrey") else { return }
        let m = try PostgreyOptions.migrate(defaultsFile: bytes, file: "/etc/default/postgrey", read: readAny)
        #expect(m.strings("policy", "listen") == ["127.0.0.1:10023"])  // POSTGREY_OPTS="--inet=10023"
        #expect(m.string("greylist", "delay") == "5m")
        #expect(m.string("greylist", "pass_ttl") == "35d")
        #expect(m.notes.filter { $0.kind == .notCarriedOver }.isEmpty, "\(m.notes)")
        let w = try Written(m)
        defer { w.remove() }
        var store = MemoryStore()
        let q = rcpt("198.51.100.20")
        #expect(store.ask(w.engine, q, at: t0).action == .defer)
        #expect(store.ask(w.engine, q, at: t0 + 299).action == .defer)
        #expect(store.ask(w.engine, q, at: t0 + 300).action == .pass)
        if let clients = readAny("/etc/postgrey/whitelist_clients"), String(decoding: clients, as: UTF8.self).contains("\ngoogle.com\n") {
            // postgrey's own whitelist, copied: a verified Google host passes at once.
            let v = store.ask(w.engine, rcpt("209.85.128.5", name: "mail-ed1-f5.google.com"), at: t0)
            #expect(v.action == .pass && v.reason == .whitelisted)
        }
    }

    @Test func debiansSqlgreyConf() throws {
        guard let bytes = try debianFile("/etc/sqlgrey/sqlgrey.conf") else { return }
        let m = try SqlgreyConfig.migrate(bytes, file: "/etc/sqlgrey/sqlgrey.conf", read: readAny)
        #expect(m.string("greylist", "delay") == "5m")          // reconnect_delay = 5 (minutes)
        #expect(m.string("greylist", "retry_window") == "1d")   // max_connect_age = 24 (hours)
        #expect(m.string("greylist", "pass_ttl") == "60d")      // awl_age = 60 (days)
        #expect(m.strings("policy", "listen") == ["127.0.0.1:2501"])
        let list = try #require(m.listFiles.first?.text)
        #expect(list.contains("client 12.5.136.141   # Southwest Airlines"))
        #expect(list.contains("client 64.12.137.0/24"))
        #expect(list.contains("client_name .amazon.com"))
        #expect(!list.contains("client 12.107.209.244"))  // commented out in sqlgrey's file
        let w = try Written(m)
        defer { w.remove() }
        var store = MemoryStore()
        let listed = store.ask(w.engine, rcpt("12.5.136.141"), at: t0)
        #expect(listed.action == .pass && listed.reason == .whitelisted)
        #expect(store.ask(w.engine, rcpt("64.12.137.200"), at: t0).reason == .whitelisted)
        #expect(store.ask(w.engine, rcpt("198.51.100.77", name: "smtp.amazon.com"), at: t0).reason == .whitelisted)
        let q = rcpt("198.51.100.20")
        #expect(store.ask(w.engine, q, at: t0).action == .defer)
        #expect(store.ask(w.engine, q, at: t0 + 4 * 60).action == .defer)
        #expect(store.ask(w.engine, q, at: t0 + 5 * 60).action == .pass)
        // A first attempt never retried within max_connect_age starts over.
        let late = rcpt("198.51.100.20", from: "carol@example.org")
        #expect(store.ask(w.engine, late, at: t0).action == .defer)
        #expect(store.ask(w.engine, late, at: t0 + 86_400 + 1).reason == .newTriplet)
    }

    @Test func sqlgreySettingsAndWhitelistForms() throws {
        let conf = "reconnect_delay = 15\nmax_connect_age = 2\nawl_age = 32\ngroup_domain_level = 10\ninet = 192.0.2.1:2501\n"
            + "greymethod = full\nreject_first_attempt = immed\nreject_code = 450\nprepend = 0\ndb_pass = secret\nbogus = 1\n"
        let files: [String: String] = ["/etc/sqlgrey/clients_fqdn_whitelist": "*.example.com\nmx.example.org # one host\n/^mail\\d+\\./\n",
                                       "/etc/sqlgrey/clients_ip_whitelist.local": "10.1\n10.2.3.4\nnot-an-ip\n"]
        let m = try SqlgreyConfig.migrate(Array(conf.utf8), file: "s.conf", read: { files[$0].map { Array($0.utf8) } })
        #expect(m.string("greylist", "delay") == "15m" && m.string("greylist", "retry_window") == "2h")
        #expect(m.string("greylist", "pass_ttl") == "32d" && m.integer("greylist", "client_autowhitelist") == 10)
        #expect(m.integer("greylist", "ipv4_prefix") == 32)
        #expect(m.strings("policy", "listen") == ["192.0.2.1:2501"])
        #expect(m.string("policy", "defer_action") == "450")
        #expect(m.value("policy", "add_header") == .bool(false))
        #expect(m.notes.map(\.description).contains("s.conf:11: not carried over: bogus: unknown sqlgrey setting"))
        #expect(m.notes(containing: "secret").isEmpty)
        #expect(!m.notes(containing: "/etc/sqlgrey/clients_ip_whitelist.local:3: not carried over:").isEmpty)
        let list = try #require(m.listFiles.first?.text)
        for line in ["client_name .example.com", "client_name =mx.example.org   # one host", "client_name /^mail\\d+\\./",
                     "client 10.1.0.0/16", "client 10.2.3.4"] {
            #expect(list.contains(line + "\n"), "\(line)")
        }
        let w = try Written(m)
        w.remove()
    }

    @Test func qmailPluginBlockExpire() throws {
        let m = try QmailConfig.migrate(controlFile: try fixture("qmail-greylisting"), file: "control/greylisting")
        #expect(m.string("greylist", "delay") == "2m")
        #expect(m.string("greylist", "retry_window") == "1d9h20m")  // 2000 minutes
        #expect(m.string("greylist", "pass_ttl") == "36d")
        #expect(!m.notes(containing: "control/greylisting:2: not carried over: mysql_default_file=control/mysql.cnf").isEmpty)
        #expect(!m.notes(containing: "control/greylisting:8: not carried over: explicit=1").isEmpty)
        #expect(!m.notes(containing: "control/greylisting:9: not carried over: loose_match=1").isEmpty)
        let w = try Written(m)
        defer { w.remove() }
        #expect(w.config.policyListeners.isEmpty)
        #expect(w.config.policyHelperListeners.map(\.description) == ["unix:/run/greylag/policy.sock"])
        var store = MemoryStore()
        let q = rcpt("203.0.113.9")
        #expect(store.ask(w.engine, q, at: t0).action == .defer)
        #expect(store.ask(w.engine, q, at: t0 + 60).action == .defer)
        #expect(store.ask(w.engine, q, at: t0 + 120).action == .pass)
        #expect(store.ask(w.engine, q, at: t0 + 30 * 86_400).action == .pass)
    }

    @Test func qmailDefaultsAreThePlugins() throws {
        let m = try QmailConfig.migrate(controlFile: [], file: "c")
        #expect(m.string("greylist", "delay") == "55m" && m.string("greylist", "retry_window") == "8h20m")
    }

    @Test func jgreylistEnvironmentFile() throws {
        let vars = try QmailConfig.variables(envFile: try fixture("jgreylist.env"), file: "env")
        #expect(vars.map(\.name) == ["JGREYLIST_DIR", "JGREYLIST_HOLDTIME", "JGREYLIST_BY_IP", "JGREYLIST_LOG", "JGREYLIST_BOGUS"])
        let m = QmailConfig.migrate(jgreylist: vars, inputs: ["env"])
        #expect(m.string("greylist", "delay") == "5m")
        #expect(!m.notes(containing: "env:2: not carried over: JGREYLIST_DIR=/var/qmail/jgreylist").isEmpty)
        #expect(!m.notes(containing: "env:6: not carried over: JGREYLIST_BOGUS: unknown jgreylist variable").isEmpty)
        #expect(!m.notes(containing: "env:4: differs: JGREYLIST_BY_IP=1: read by greylag qmail-wrap").isEmpty)
        let w = try Written(m)
        w.remove()
    }
}
