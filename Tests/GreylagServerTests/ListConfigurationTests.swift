import Foundation
import GreylagCore
import GreylagServer
import Testing

@Suite struct ListConfigurationTests {
    func errors(_ text: String, file: String = "/etc/greylag/greylag.toml") -> [String] { configurationErrors(text, file: file) }

    @Test func badValuesAreLocatedAtTheirOwnLine() {
        let found = errors("""
            [whitelist]
            clients = [
                "192.0.2.0/24",
                "192.0.2.0/33",
            ]
            client_names = ['/^mx(\\d+\\.example\\.com$/']
            [blacklist]
            colour = "red"
            """)
        #expect(found.count == 3)
        #expect(found[0] == "/etc/greylag/greylag.toml:4: whitelist.clients: \"192.0.2.0/33\" is not an IP address "
                + "or CIDR network such as 192.0.2.0/24 or 2001:db8::/32")
        #expect(found[1].hasPrefix("/etc/greylag/greylag.toml:6: whitelist.client_names: bad regular expression /^mx(\\d+"))
        #expect(found[2].hasPrefix("/etc/greylag/greylag.toml:8: blacklist.colour: unknown key; expected one of clients,"))
    }

    @Test func unreadableAndBadListFilesAreNamed() throws {
        let dir = TemporaryDirectory()
        try "example.com\n# fine\nnot a host\n".write(toFile: dir.path + "/clients", atomically: true, encoding: .utf8)
        let found = errors("""
            [whitelist]
            client_files = ["clients", "missing-file"]
            """, file: dir.path + "/greylag.toml")
        #expect(found == [
            "\(dir.path)/greylag.toml:2: whitelist.client_files: cannot read list file \(dir.path)/missing-file: "
                + "No such file or directory",
            "\(dir.path)/clients:3: \"not a host\" does not look like a host name, address or network",
        ])
    }

    @Test func namedListsMustExistAndCannotNest() {
        let found = errors("""
            [whitelist]
            lists = ["friends"]
            [lists.others]
            lists = ["x"]
            """)
        #expect(found.contains("/etc/greylag/greylag.toml:2: whitelist.lists: no list named \"friends\"; defined: others"))
        #expect(found.contains("/etc/greylag/greylag.toml:4: lists.others.lists: named lists cannot include other lists"))
    }

    @Test func defaultsLoadTheBuiltinListAndTrustLoopback() throws {
        let d = ConfigurationLoader.defaults()
        #expect(d.lists.whitelist.count == BuiltinLists.whitelistClients.count)
        #expect(d.lists.whitelist.rules.allSatisfy { $0.origin.hasPrefix("builtin:") })
        #expect(d.lists.trusted.rules.map(\.text) == ["127.0.0.0/8", "::1"])
        #expect(d.lists.exemptAuthenticated)
        // The shipped file parses without a single bad line.
        #expect(ListFileParser.parse(BuiltinLists.whitelistClientsText, format: .postgreyClients, name: "builtin")
            .errors.isEmpty)
        let c = try ConfigurationLoader.parse("""
            [whitelist]
            builtin = false
            [exemptions]
            authenticated = false
            trusted_networks = []
            [scope]
            mode = "opt-in"
            [admin]
            socket = "none"
            """, file: "t.toml")
        #expect(c.lists.whitelist.isEmpty && c.lists.trusted.isEmpty && !c.lists.exemptAuthenticated)
        #expect(c.lists.scopeMode == .optIn)
        #expect(c.adminSocketPath == nil)
    }

    @Test func postgreyFilesAreReadAsTheyAre() throws {
        // The files postgrey ships, where the package is installed.
        let clients = "/etc/postgrey/whitelist_clients", recipients = "/etc/postgrey/whitelist_recipients"
        guard FileManager.default.fileExists(atPath: clients) else { return }
        let c = try ConfigurationLoader.parse("""
            [whitelist]
            builtin = false
            client_files = ["\(clients)"]
            recipient_files = ["\(recipients)"]
            """, file: "t.toml")
        #expect(c.lists.whitelist.count > 100)
        #expect(c.listFiles == [clients, recipients])
    }
}

@Suite struct MilterConfigurationTests {
    @Test func milterSocketNotations() {
        #expect(ListenAddress(milter: "inet:10029@127.0.0.1") == .tcp(host: "127.0.0.1", port: 10029))
        #expect(ListenAddress(milter: "inet:10029") == .tcp(host: "0.0.0.0", port: 10029))
        #expect(ListenAddress(milter: "inet6:10029@[::1]") == .tcp(host: "::1", port: 10029))
        #expect(ListenAddress(milter: "inet6:10029@::1") == .tcp(host: "::1", port: 10029))
        #expect(ListenAddress(milter: "inet6:10029") == .tcp(host: "::", port: 10029))
        #expect(ListenAddress(milter: "unix:/run/greylag/milter.sock") == .unix(path: "/run/greylag/milter.sock"))
        #expect(ListenAddress(milter: "local:/run/milter.sock") == .unix(path: "/run/milter.sock"))
        #expect(ListenAddress(milter: "/var/run/milter-greylist.sock") == .unix(path: "/var/run/milter-greylist.sock"))
        #expect(ListenAddress(milter: "127.0.0.1:10029") == .tcp(host: "127.0.0.1", port: 10029))
        for bad in ["inet:0@127.0.0.1", "inet:x@h", "inet:10029@", "local:relative", "inet6:"] {
            #expect(ListenAddress(milter: bad) == nil, "\(bad)")
        }
    }

    @Test func milterSectionIsReadAndChecked() throws {
        let c = try ConfigurationLoader.parse("""
            [milter]
            listen = ["inet:10040@127.0.0.1", "unix:/run/greylag/milter.sock"]
            defer_code = "450 4.2.0"
            defer_text = "Come back in {left}"
            header = "all"
            """, file: "t.toml")
        #expect(c.milterListeners == [.tcp(host: "127.0.0.1", port: 10040), .unix(path: "/run/greylag/milter.sock")])
        #expect(c.milterReplies.deferCode == "450 4.2.0" && c.milterReplies.header == .all)
        #expect(ConfigurationLoader.defaults().milterListeners == [.tcp(host: "127.0.0.1", port: 10029)])
        do {
            _ = try ConfigurationLoader.parse("""
                [milter]
                listen = ["inet:99999@127.0.0.1"]
                defer_code = "451 5.7.1"
                header = "sometimes"
                """, file: "t.toml")
            Issue.record("accepted a bad [milter] section")
        } catch let e as ConfigurationErrors {
            #expect(e.errors.map(\.description) == [
                "t.toml:2: milter.listen: \"inet:99999@127.0.0.1\" is not inet:PORT@HOST, inet6:PORT@HOST, unix:/path, a path or HOST:PORT",
                "t.toml:3: milter.defer_code: \"451 5.7.1\" is not a 4xx code with an optional enhanced code, such as \"451 4.7.1\"",
                "t.toml:4: milter.header: \"sometimes\" is not none, delayed, whitelisted or all",
            ])
        }
    }
}
