import Foundation
import GreylagCore
import GreylagServer
import Testing

/// Numbers out of range from the admin API, the command line and a reloaded
/// configuration are refused with a clear error; the daemon carries on.
@Suite struct NumberRangeEndToEndTests {
    static let token = "a-token-for-the-range-tests"
    let headers = ["Authorization": "Bearer \(NumberRangeEndToEndTests.token)", "Content-Type": "application/json"]

    @Test func adminAPIAnswers400ForAnExpiryOutOfRange() async throws {
        try await withDaemon(configure: {
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
            $0.httpToken = Self.token
        }) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            for (expires, message) in [("9223372036854775807", "expires_in 9223372036854775807 is out of range"),
                                       ("315576001", "expires_in 315576001 is out of range"),
                                       ("-1", "expiry must be in the future"),
                                       ("0", "expiry must be in the future"),
                                       ("9223372036854775808", "the body must be JSON"), ("1e308", "the body must be JSON"),
                                       ("-9223372036854775808", "expiry must be in the future")] {
                let r = try await httpRequest(http, "POST", "/api/whitelist", headers: headers,
                                              body: #"{"field": "client", "value": "192.0.2.0/24", "expires_in": \#(expires)}"#)
                #expect(r.status == 400 && r.body.contains(message), "\(expires): \(r)")
            }
            // Nothing was added and the daemon still decides.
            let entries = try await httpRequest(http, "GET", "/api/whitelist", headers: headers)
            #expect(entries.status == 200 && !entries.body.contains("192.0.2.0/24"), "\(entries)")
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)
            // The longest expiry is taken.
            let add = try await httpRequest(http, "POST", "/api/whitelist", headers: headers,
                                            body: #"{"field": "client", "value": "192.0.2.0/24", "expires_in": 315576000}"#)
            #expect(add.status == 200, "\(add)")
            #expect(try await c.ask(request(recipient: "second@example.net")) == "action=DUNNO")
        }
    }

    @Test func aReloadWithADurationOutOfRangeIsRefusedAndTheOldConfigurationStays() async throws {
        let dir = TemporaryDirectory()
        let configPath = dir.path + "/greylag.toml"
        try "[greylist]\ndelay = \"5m\"\n".write(toFile: configPath, atomically: true, encoding: .utf8)
        let socket = dir.path + "/admin.sock"
        var loaded = try ConfigurationLoader.load(path: configPath)
        loaded.adminSocket = .path(socket)
        loaded.watchInterval = 0
        try await withDaemon(configure: using(loaded)) { addresses, _ in
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)
            for bad in ["delay = \"99999999999999999999d\"", "delay = 9223372036854775807", "block_expire = 9223372036854775807",
                        "delay = nan", "delay = -1"] {
                try "[greylist]\n\(bad)\n".write(toFile: configPath, atomically: true, encoding: .utf8)
                let r = try await AdminClient.request(AdminRequest(command: .reload), socket: socket, timeout: 10)
                #expect(!r.ok && (r.error ?? "").contains("\(configPath):2: greylist."), "\(bad): \(r.error ?? "")")
                // The delay in force is still 5 minutes.
                #expect(try await c.ask(request(recipient: "r-\(UUID().uuidString.prefix(6))@example.net")) == defer300, "\(bad)")
            }
        }
    }
}

/// The real binary: `--expires` out of range exits 64 (EX_USAGE) with a clear message.
@Suite(.enabled(if: E2E.enabled)) struct NumberRangeCommandLineTests {
    @Test func whitelistAddRefusesAnExpiryOutOfRange() async throws {
        let binary = try E2E.value("GREYLAG_BINARY")
        let dir = TemporaryDirectory()
        let config = dir.path + "/greylag.toml"
        try """
            [store]
            path = "\(dir.path)/greylag.db"
            [admin]
            socket = "\(dir.path)/admin.sock"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        for expires in ["9223372036854775807", "99999999999999999999d", "3653d"] {
            let r = try await runProgram(binary, ["whitelist", "add", "-c", config, "client", "192.0.2.0/24", "--expires", expires])
            #expect(r.status == 64, "\(expires): \(r.output)")
            #expect(r.output.contains("--expires \(expires) is out of range: at most 10 years"), "\(r.output)")
        }
        let bad = try await runProgram(binary, ["whitelist", "add", "-c", config, "client", "192.0.2.0/24", "--expires=-1"])
        #expect(bad.status == 64 && bad.output.contains("\"-1\" is not a duration"), "\(bad.output)")
        let list = try await runProgram(binary, ["whitelist", "list", "-c", config])
        #expect(!list.output.contains("192.0.2.0/24"), "\(list.output)")
    }
}
