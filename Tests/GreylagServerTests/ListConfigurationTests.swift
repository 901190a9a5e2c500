import Foundation
import GreylagCore
import GreylagServer
import Testing

@Suite struct ListConfigurationTests {
    func errors(_ text: String, file: String = "/etc/greylag/greylag.toml") -> [String] {
        do {
            _ = try ConfigurationLoader.parse(text, file: file)
            return []
        } catch let e as ConfigurationErrors {
            return e.errors.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

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
