import Foundation
import GreylagTestSupport
@testable import GreylagServer
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Who may change state over HTTP, and what a web page in a browser on
/// the host cannot make the browser do (issue 17, item 1).
@Suite struct HTTPAuthorityRuleTests {
    let local = ListenAddress.tcp(host: "127.0.0.1", port: 10080)
    let unix = ListenAddress.unix(path: "/run/greylag/http.sock")
    let token = "0123456789abcdef-token"

    @Test func withoutATokenTheAPIIsReadOnlyEverywhere() {
        for listener in [local, unix, .tcp(host: "::1", port: 1), .tcp(host: "0.0.0.0", port: 1)] {
            guard case .forbidden(let why) = HTTPAccess.check(listener: listener, token: nil, authorization: nil,
                                                                write: true) else {
                Issue.record("\(listener) takes writes without a token")
                continue
            }
            #expect(why.contains("http.token"))
            #expect(HTTPAccess.check(listener: listener, token: token, authorization: "Bearer \(token)",
                                     write: true) == .allowed)
        }
        #expect(HTTPAccess.check(listener: local, token: nil, authorization: nil, write: false) == .allowed)
    }

    @Test func crossSiteWritesAndForeignHostsAreRefused() {
        func check(_ listener: ListenAddress, host: String?, origin: String? = nil, site: String? = nil,
                   write: Bool = true) -> String? {
            HTTPAccess.crossSite(listener: listener, host: host, origin: origin, fetchSite: site, write: write)
        }
        // Same origin, curl (no Origin), the browser's own navigation.
        #expect(check(local, host: "127.0.0.1:10080", origin: "http://127.0.0.1:10080") == nil)
        #expect(check(local, host: "localhost:10080") == nil)
        #expect(check(local, host: "[::1]:10080", site: "same-origin") == nil)
        #expect(check(local, host: "127.0.0.1:10080", site: "none") == nil)
        #expect(check(local, host: "127.0.0.1", origin: "http://127.0.0.1:80") == nil)
        // Another site's page.
        #expect(check(local, host: "127.0.0.1:10080", origin: "http://evil.example") != nil)
        #expect(check(local, host: "127.0.0.1:10080", origin: "http://127.0.0.1:8080") != nil)
        #expect(check(local, host: "127.0.0.1:10080", origin: "null") != nil)
        #expect(check(local, host: "127.0.0.1:10080", site: "cross-site") != nil)
        #expect(check(local, host: "127.0.0.1:10080", site: "same-site") != nil)
        // DNS rebinding: a foreign name on a loopback listener, even for reads.
        #expect(check(local, host: "rebind.evil.example:10080", write: false) != nil)
        #expect(check(local, host: "rebind.evil.example:10080", origin: "http://rebind.evil.example:10080") != nil)
        // Reads from another site are harmless without CORS headers; other listeners take any name.
        #expect(check(local, host: "127.0.0.1:10080", origin: "http://evil.example", write: false) == nil)
        #expect(check(.tcp(host: "0.0.0.0", port: 10080), host: "mx1.example.net:10080", write: false) == nil)
        #expect(check(unix, host: "localhost", write: false) == nil)
        #expect(check(unix, host: "localhost", origin: "http://evil.example") != nil)
    }

    @Test func writesMustBeJSON() {
        #expect(HTTPAccess.isJSON(contentType: "application/json"))
        #expect(HTTPAccess.isJSON(contentType: "Application/JSON; charset=utf-8"))
        for other in [nil, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                      "application/jsonp", ""] {
            #expect(!HTTPAccess.isJSON(contentType: other), "\(other ?? "nil")")
        }
    }
}

@Suite struct HTTPAuthorityLiveTests {
    static let token = "a-token-for-the-hardening-tests"

    @Test func tokenlessLoopbackAPIRefusesEveryWrite() async throws {
        try await withDaemon(configure: { $0.httpListener = .tcp(host: "127.0.0.1", port: 0) }) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)
            let writes: [(String, String, String?)] = [
                ("POST", "/api/whitelist", #"{"field": "client", "value": "0.0.0.0/0"}"#),
                ("DELETE", "/api/records?recipient=bob@example.net", nil),
                ("POST", "/api/reload", nil),
            ]
            for (method, path, body) in writes {
                let r = try await httpRequest(http, method, path, body: body)
                #expect(r.status == 403 && r.body.contains("read-only without http.token"), "\(method) \(path): \(r)")
            }
            // Nothing changed: the record is still there, the network not whitelisted.
            #expect(try await c.ask(request(recipient: "second@example.net")) == defer300)
            let records = try await httpRequest(http, "GET", "/api/records")
            #expect(records.status == 200 && records.body.contains(#""recipient":"bob@example.net""#), "\(records)")
        }
    }

    @Test func aBrowserCannotBeMadeToWrite() async throws {
        let log = CapturedLog()
        try await withDaemon(configure: {
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
            $0.httpToken = Self.token
        }, log: log) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            let port = http.split(separator: ":").last.map(String.init) ?? ""
            let c = try await PolicyTestClient(addresses[0])
            let auth = "Bearer \(Self.token)"
            let entry = #"{"field": "client", "value": "192.0.2.0/24"}"#
            // A form post from a page: text/plain or form encoding, a foreign Origin.
            let plain = try await httpRequest(http, "POST", "/api/whitelist",
                                              headers: ["Authorization": auth, "Content-Type": "text/plain"], body: entry)
            #expect(plain.status == 415, "\(plain)")
            let foreign = try await httpRequest(http, "POST", "/api/whitelist",
                                                headers: ["Authorization": auth, "Origin": "http://evil.example"], body: entry)
            #expect(foreign.status == 403 && foreign.body.contains("origin"), "\(foreign)")
            let rebound = try await httpRequest(http, "GET", "/api/stats",
                                                headers: ["Authorization": auth, "Host": "evil.example:\(port)"])
            #expect(rebound.status == 403 && rebound.body.contains("not a loopback name"), "\(rebound)")
            let noToken = try await httpRequest(http, "POST", "/api/whitelist", body: entry)
            #expect(noToken.status == 401)
            #expect(try await c.ask(request()) == defer300)
            #expect(log.contains("http: refused POST /api/whitelist"), "\(log.all)")

            // The same origin with the token: in force, and logged with the peer.
            let ok = try await httpRequest(http, "POST", "/api/whitelist",
                                           headers: ["Authorization": auth, "Host": "127.0.0.1:\(port)",
                                                     "Origin": "http://127.0.0.1:\(port)"], body: entry)
            #expect(ok.status == 200, "\(ok)")
            #expect(try await c.ask(request(recipient: "second@example.net")) == "action=DUNNO")
            #expect(log.all.contains { $0.hasPrefix("notice admin change by http 127.0.0.1:") && $0.contains("with the token: add whitelist client 192.0.2.0/24") },
                    "\(log.all)")
        }
    }

    @Test func adminSocketChangesAreLoggedWithThePeersUid() async throws {
        let log = CapturedLog()
        let dir = TemporaryDirectory()
        let socket = dir.path + "/admin.sock"
        try await withDaemon(configure: { $0.adminSocket = .path(socket) }, log: log) { _, _ in
            let r = try await AdminClient.request(AdminRequest(command: .add, list: .blacklist, field: .client,
                                                               value: "198.51.100.0/24"), socket: socket)
            #expect(r.ok, "\(r)")
            let line = "admin change by admin socket uid \(getuid()) pid \(getpid()): add blacklist client 198.51.100.0/24"
            #expect(log.contains(line), "\(log.all)")
        }
        _ = dir
    }

    @Test func aReloadPutsANewTokenInForce() async throws {
        let dir = TemporaryDirectory()
        let file = dir.path + "/greylag.toml"
        let first = "first-token-0123456789", second = "second-token-0123456789"
        @Sendable func write(_ token: String) throws {
            try "[http]\ntoken = \"\(token)\"\n".write(toFile: file, atomically: true, encoding: .utf8)
        }
        try write(first)
        let loaded = try ConfigurationLoader.load(path: file)
        let log = CapturedLog()
        try await withDaemon(configure: {
            $0.source = file
            $0.httpToken = loaded.httpToken
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
            $0.watchInterval = 0
        }, log: log) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            #expect(try await httpRequest(http, "GET", "/api/stats", headers: ["Authorization": "Bearer \(first)"]).status == 200)
            try write(second)
            let reload = try await httpRequest(http, "POST", "/api/reload", headers: ["Authorization": "Bearer \(first)"])
            #expect(reload.status == 200, "\(reload)")
            #expect(try await httpRequest(http, "GET", "/api/stats", headers: ["Authorization": "Bearer \(first)"]).status == 401)
            #expect(try await httpRequest(http, "GET", "/api/stats", headers: ["Authorization": "Bearer \(second)"]).status == 200)
            #expect(log.contains("reload: http.token replaced"), "\(log.all)")
        }
    }

    @Test func theHTTPBoundsAreReadAndRangeChecked() throws {
        let c = try ConfigurationLoader.parse("""
            [http]
            socket_mode = "0660"
            max_connections = 10
            idle_timeout = "2m"
            request_timeout = 5
            """, file: "t.toml")
        #expect(c.httpSocketMode == 0o660 && c.httpMaxConnections == 10)
        #expect(c.httpIdleTimeout == 120 && c.httpRequestTimeout == 5)
        for (text, message) in [("idle_timeout = 0", "t.toml:2: http.idle_timeout: must be from 1s to 1d"),
                                ("idle_timeout = \"2d\"", "t.toml:2: http.idle_timeout: must be from 1s to 1d"),
                                ("request_timeout = \"2h\"", "t.toml:2: http.request_timeout: must be from 1s to 1h"),
                                ("max_connections = 0", "t.toml:2: http.max_connections:")] {
            do {
                _ = try ConfigurationLoader.parse("[http]\n\(text)\n", file: "t.toml")
                Issue.record("\(text) was accepted")
            } catch let e as ConfigurationErrors {
                #expect("\(e)".contains(message), "\(e)")
            }
        }
    }

    @Test func reloadNamesEveryKeyThatNeedsARestart() throws {
        var a = GreylagConfiguration()
        var b = a
        b.httpListener = .tcp(host: "127.0.0.1", port: 1)
        b.httpSocketMode = 0o660
        b.httpMaxConnections = 5
        b.httpIdleTimeout = 5
        b.httpRequestTimeout = 5
        b.historyKeep = 86_400
        b.milterSocketMode = 0o600
        b.sizesInterval = 1
        b.statsInterval = 1
        let named = ConfigReloader.restartOnly(a, b)
        for key in ["http.listen", "http.socket_mode", "http.max_connections", "http.idle_timeout",
                    "http.request_timeout", "http.history_keep", "milter.socket_mode", "store.sizes_interval",
                    "log.stats_interval"] {
            #expect(named.contains(key), "\(key) not named: \(named)")
        }
        a.httpToken = "x"
        #expect(!ConfigReloader.restartOnly(a, b).contains { $0.contains("token") })
    }
}

/// The HTTP listener's own bounds (issue 17, item 3).
@Suite struct HTTPConnectionBoundsTests {
    @Test func capIdleAndSlowRequests() async throws {
        let log = CapturedLog()
        try await withDaemon(configure: {
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
            $0.httpMaxConnections = 3
            $0.httpIdleTimeout = 1
            $0.httpRequestTimeout = 1
        }, log: log) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            let port = Int(http.split(separator: ":").last!)!
            // Three silent connections fill the cap; a fourth is closed at once.
            let silent = try (0..<3).map { _ in try PolicyTestClient.connectTCP("127.0.0.1", port) }
            defer { silent.forEach { close($0) } }
            try await Task.sleep(for: .milliseconds(200))
            let fourth = try PolicyTestClient.connectTCP("127.0.0.1", port)
            defer { close(fourth) }
            #expect(try await Self.closedWithin(fourth, seconds: 0.9), "the fourth connection stayed open")
            #expect(log.contains("http connection from") && log.contains("http.max_connections"), "\(log.all)")
            // The silent ones are closed by the idle timeout; then /metrics answers again.
            for fd in silent { #expect(try await Self.closedWithin(fd, seconds: 3), "a silent connection stayed open") }
            #expect(try await httpGet(http, "/metrics").status == 200)
            // A head with a body that never comes: closed after request_timeout.
            let slow = try PolicyTestClient.connectTCP("127.0.0.1", port)
            defer { close(slow) }
            let head = Array("POST /api/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{".utf8)
            _ = write(slow, head, head.count)
            #expect(try await Self.closedWithin(slow, seconds: 3), "a slow body kept its connection")
        }
    }

    /// True when the peer closes `fd` within `seconds` (reads until EOF or error).
    static func closedWithin(_ fd: Int32, seconds: Double) async throws -> Bool {
        try await PolicyTestClient.offPool {
            var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n > 0 { continue }
                if n == 0 { return true }
                return errno == ECONNRESET
            }
        }
    }
}

@Suite struct DescriptorBudgetTests {
    @Test func capsThatFitAreKept() {
        let caps = DescriptorBudget.Caps(policy: 2000, milter: 2000, http: 64)
        let (fitted, warning) = DescriptorBudget.fit(caps, limit: 1_048_576, inUse: 20, reserve: 72)
        #expect(fitted == caps && warning == nil)
    }

    @Test func capsThatDoNotFitAreLoweredAndNamed() throws {
        let caps = DescriptorBudget.Caps(policy: 2000, milter: 2000, http: 64)
        let (fitted, warning) = DescriptorBudget.fit(caps, limit: 1024, inUse: 20, reserve: 72)
        let available = 1024 - 20 - 72 - DescriptorBudget.adminConnections
        #expect(fitted.policy + fitted.milter + fitted.http <= available)
        #expect(fitted.policy > 400 && fitted.http >= 1, "\(fitted)")
        let text = try #require(warning)
        for key in ["policy.max_connections 2000", "milter.max_connections 2000", "http.max_connections 64",
                    "RLIMIT_NOFILE 1024", "LimitNOFILE"] {
            #expect(text.contains(key), "\(text)")
        }
        // A listener not in use is left out; a tiny limit still leaves one of each.
        let (tiny, _) = DescriptorBudget.fit(.init(policy: 2000, milter: 0, http: 64), limit: 100, inUse: 90, reserve: 72)
        #expect(tiny.milter == 0 && tiny.policy >= 1 && tiny.http >= 1)
    }
}

/// The real binary at a descriptor limit far below its caps (issue 17, item 3).
@Suite struct DescriptorLimitLiveTests {
    @Test func aConnectionFloodAtALowDescriptorLimitIsSurvived() async throws {
        let binary = try E2E.value("GREYLAG_BINARY")
        _ = DescriptorBudget.raiseLimit()  // the test itself holds 600 connections
        let dir = TemporaryDirectory()
        let port = try freePort(), httpPort = try freePort()
        let config = dir.path + "/greylag.toml"
        try """
            [policy]
            listen = ["127.0.0.1:\(port)"]
            [milter]
            listen = []
            [http]
            listen = "127.0.0.1:\(httpPort)"
            [store]
            path = "\(dir.path)/greylag.db"
            [reload]
            watch_interval = 0
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let logPath = dir.path + "/daemon.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // Hard and soft limit 256: raising the soft limit cannot help.
        process.arguments = ["-c", "ulimit -n 256 && exec \"$0\" serve --config \"$1\"", binary, config]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = handle
        process.standardError = handle
        try spawn(process)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        try await waitForPort(port)
        func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        #expect(log().contains("lowered to policy.max_connections"), "\(log())")

        var flood: [Int32] = []
        defer { flood.forEach { close($0) } }
        for _ in 0..<300 {
            if let fd = try? PolicyTestClient.connectTCP("127.0.0.1", port) { flood.append(fd) }
            if let fd = try? PolicyTestClient.connectTCP("127.0.0.1", httpPort) { flood.append(fd) }
        }
        try await Task.sleep(for: .milliseconds(500))
        #expect(process.isRunning, "the daemon died under the flood: \(log())")
        #expect(log().contains("policy connection from") && log().contains("refused"), "\(log())")
        flood.forEach { close($0) }
        flood = []
        try await Task.sleep(for: .milliseconds(300))
        // Alive and answering a well-behaved client, on both listeners.
        let c = try await PolicyTestClient("127.0.0.1:\(port)")
        #expect(try await c.ask(request()) == defer300)
        #expect(try await httpGet("127.0.0.1:\(httpPort)", "/metrics").status == 200)
        #expect(process.isRunning)
        _ = dir
    }
}

/// A clean shutdown logs no error (issue 17, item 10).
@Suite struct CleanShutdownTests {
    @Test func sigtermWithOpenConnectionsLogsNoError() async throws {
        let binary = try E2E.value("GREYLAG_BINARY")
        let dir = TemporaryDirectory()
        let port = try freePort(), httpPort = try freePort(), milterPort = try freePort()
        let config = dir.path + "/greylag.toml"
        try """
            [policy]
            listen = ["127.0.0.1:\(port)"]
            [milter]
            listen = ["inet:\(milterPort)@127.0.0.1"]
            [http]
            listen = "127.0.0.1:\(httpPort)"
            [store]
            path = "\(dir.path)/greylag.db"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let logPath = dir.path + "/daemon.log"
        let daemon = try startDaemon(binary, config: config, log: logPath)
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        try await waitForPort(port)
        // A policy connection, a milter connection and an HTTP keep-alive connection stay open.
        let c = try await PolicyTestClient("127.0.0.1:\(port)")
        #expect(try await c.ask(request()) == defer300)
        let milter = try PolicyTestClient.connectTCP("127.0.0.1", milterPort)
        defer { close(milter) }
        let keepAlive = try PolicyTestClient.connectTCP("127.0.0.1", httpPort)
        defer { close(keepAlive) }
        let get = Array("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        _ = write(keepAlive, get, get.count)
        try await Task.sleep(for: .milliseconds(300))
        kill(daemon.processIdentifier, SIGTERM)
        for _ in 0..<200 where daemon.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!daemon.isRunning)
        #expect(daemon.terminationStatus == 0)
        let log = try String(contentsOfFile: logPath, encoding: .utf8)
        #expect(log.contains("greylag stopped"), "\(log)")
        for bad in [" error ", " critical ", "CancellationError", "Error:"] {
            #expect(!log.contains(bad), "\(bad) in: \(log)")
        }
        _ = dir
    }
}

/// Item 1 against real peers: another local user (`runuser -u nobody`) and
/// another host (a network namespace behind a veth pair). Needs root, as
/// under scripts/test.sh.
@Suite(.serialized) struct HTTPForeignPeerTests {
    /// Runs `curl` as `prefix` (e.g. runuser or ip netns exec) and returns the HTTP status ("000": no connection).
    static func curl(_ prefix: [String], _ arguments: [String]) async throws -> String {
        let r = try await runProgram(prefix.first!, Array(prefix.dropFirst()) + ["curl", "-s", "-o", "/dev/null",
                                                                                "-w", "%{http_code}", "-m", "5"] + arguments)
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(.enabled(if: E2E.enabled)) func anotherLocalUserCanReadButNotWrite() async throws {
        let dir = TemporaryDirectory()
        chmod(dir.path, 0o755)
        let socket = dir.path + "/http.sock"
        let nobody = ["/usr/sbin/runuser", "-u", "nobody", "--"]
        let post = ["-X", "POST", "-H", "Content-Type: application/json", "-d", #"{"field":"client","value":"0.0.0.0/0"}"#]
        // The default mode of an HTTP unix socket keeps other users out.
        try await withDaemon(configure: { $0.httpListener = .unix(path: socket) }) { _, _ async throws in
            #expect(try await Self.curl(nobody, ["--unix-socket", socket, "http://localhost/api/stats"]) == "000")
            #expect(try await Self.curl(["/usr/bin/env"], ["--unix-socket", socket, "http://localhost/api/stats"]) == "200")
        }
        // Loopback, and a socket opened to everyone: reads, but no change without the token.
        try await withDaemon(configure: { $0.httpListener = .tcp(host: "127.0.0.1", port: 0) }) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            #expect(try await Self.curl(nobody, ["http://\(http)/api/stats"]) == "200")
            #expect(try await Self.curl(nobody, post + ["http://\(http)/api/whitelist"]) == "403")
        }
        try await withDaemon(configure: {
            $0.httpListener = .unix(path: socket)
            $0.httpSocketMode = 0o666
        }) { _, _ async throws in
            #expect(try await Self.curl(nobody, ["--unix-socket", socket, "http://localhost/api/stats"]) == "200")
            #expect(try await Self.curl(nobody, post + ["--unix-socket", socket, "http://localhost/api/whitelist"]) == "403")
        }
    }

    @Test(.enabled(if: E2E.enabled)) func anotherHostGetsMetricsOnlyWithoutAToken() async throws {
        let n = Int.random(in: 10...250)
        let ns = "greylag-test-\(n)", hostSide = "glg\(n)h", nsSide = "glg\(n)n"
        let host = "10.233.\(n).1", peer = "10.233.\(n).2"
        let setup = """
            ip netns add \(ns) && ip link add \(hostSide) type veth peer name \(nsSide) && \
            ip link set \(nsSide) netns \(ns) && ip addr add \(host)/30 dev \(hostSide) && ip link set \(hostSide) up && \
            ip netns exec \(ns) ip addr add \(peer)/30 dev \(nsSide) && ip netns exec \(ns) ip link set \(nsSide) up && \
            ip netns exec \(ns) ip link set lo up
            """
        let made = try await runProgram("/bin/sh", ["-c", setup])
        defer {
            _ = try? Process.run(URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", "ip link del \(hostSide); ip netns del \(ns)"])
                .waitUntilExit()
        }
        try #require(made.status == 0, "cannot make a network namespace: \(made.output)")
        let remote = ["/usr/sbin/ip", "netns", "exec", ns]
        let log = CapturedLog()
        try await withDaemon(configure: { $0.httpListener = .tcp(host: host, port: 0) }, log: log) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            #expect(try await Self.curl(remote, ["http://\(http)/metrics"]) == "200")
            #expect(try await Self.curl(remote, ["http://\(http)/api/stats"]) == "403")
            #expect(try await Self.curl(remote, ["http://\(http)/"]) == "403")
            #expect(try await Self.curl(remote, ["-X", "POST", "-H", "Content-Type: application/json", "-d", "{}",
                                                 "http://\(http)/api/reload"]) == "403")
            #expect(log.contains("is reachable from other hosts and http.token is not set"), "\(log.all)")
        }
        let token = "a-token-for-the-remote-host-test"
        try await withDaemon(configure: {
            $0.httpListener = .tcp(host: host, port: 0)
            $0.httpToken = token
        }) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            #expect(try await Self.curl(remote, ["http://\(http)/api/stats"]) == "401")
            #expect(try await Self.curl(remote, ["-H", "Authorization: Bearer \(token)", "http://\(http)/api/stats"]) == "200")
            #expect(try await Self.curl(remote, ["-X", "POST", "-H", "Authorization: Bearer \(token)", "-H",
                                                 "Content-Type: application/json", "-d",
                                                 #"{"field":"client","value":"192.0.2.0/24"}"#,
                                                 "http://\(http)/api/whitelist"]) == "200")
        }
    }
}
