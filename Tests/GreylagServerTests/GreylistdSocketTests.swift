import Foundation
import GreylagCore
import GreylagStore
import NIOPosix
import Testing
@testable import GreylagServer

/// A greylistd client as Exim's `readsocket` and `greylist(1)` are: write
/// the request, optionally half-close, read until the daemon closes.
func greylistd(_ path: String, _ request: String, halfClose: Bool = true) async throws -> String? {
    try await greylistd(path, bytes: Array(request.utf8), halfClose: halfClose)
}

/// Raw bytes; nil when the daemon closed without answering.
func greylistd(_ path: String, bytes: [UInt8], halfClose: Bool = true) async throws -> String? {
    let c = try await PolicyTestClient("unix:" + path)
    if !bytes.isEmpty { try await c.send(bytes: bytes) }
    if halfClose { c.shutdownWrite() }
    let fd = c.fd
    let answer = try await PolicyTestClient.offPool { () throws -> [UInt8] in
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n == 0 || (n < 0 && errno == ECONNRESET) { return out }
            guard n > 0 else { throw TestFailure("recv failed: errno \(errno)") }
            out += chunk[0..<n]
        }
    }
    _ = c
    return answer.isEmpty ? nil : String(decoding: answer, as: UTF8.self)
}

@Suite(.serialized) struct GreylistdSocketTests {
    /// A daemon with `[greylistd] listen` on a socket in `dir`, read from TOML
    /// as a postmaster writes it, and a blacklisted sender.
    func configure(_ dir: TemporaryDirectory) throws -> @Sendable (inout GreylagConfiguration) -> Void {
        let parsed = try ConfigurationLoader.parse("""
            [greylistd]
            listen = ["unix:\(dir.path)/socket"]
            socket_mode = "0600"
            [blacklist]
            senders = ["spammer@bad.example"]
            """, file: "greylag.toml")
        return { c in
            c.greylistdListeners = parsed.greylistdListeners
            c.greylistdSocketMode = parsed.greylistdSocketMode
            c.lists = parsed.lists
            c.policy.delay = 300
        }
    }

    @Test func everyAnswerKind() async throws {
        let dir = TemporaryDirectory()
        let socket = dir.path + "/socket"
        let clock = ManualClock()
        let log = CapturedLog()
        try await withDaemon(configure: try configure(dir), clock: clock, log: log) { addresses, _ in
            #expect(addresses.contains("greylistd:unix:\(socket)"))
            var st = stat()
            #expect(stat(socket, &st) == 0 && st.st_mode & 0o777 == 0o600)
            let acl = "--grey 192.0.2.7 alice@example.org bob@example.net"
            // Debian's ACL: first sight is grey, recorded (true: defer).
            #expect(try await greylistd(socket, acl) == "true")
            #expect(try await greylistd(socket, acl) == "true")
            #expect(try await greylistd(socket, "check 192.0.2.7 alice@example.org bob@example.net") == "grey")
            #expect(try await greylistd(socket, "status 192.0.2.99 nobody@example.org bob@example.net") == "unseen")
            clock.advance(301)
            // check and status look without recording ...
            #expect(try await greylistd(socket, "check --white 192.0.2.7 alice@example.org bob@example.net") == "true")
            #expect(try await greylistd(socket, "status 192.0.2.7 alice@example.org bob@example.net") == "white")
            // ... the ACL's request records the pass; greylag's /24 keys the neighbour the same.
            #expect(try await greylistd(socket, acl) == "false")
            #expect(try await greylistd(socket, "192.0.2.8 ALICE@example.org bob@example.net") == "white")
            #expect(try await greylistd(socket, "--white 192.0.2.0/24 alice@example.org bob@example.net") == "true")
            // The setup script's second statement, --black, after a --grey that passed.
            #expect(try await greylistd(socket, "--black 192.0.2.7 alice@example.org bob@example.net") == "false")
            // greylag's blacklist is greylistd's black.
            #expect(try await greylistd(socket, "192.0.2.7 spammer@bad.example bob@example.net") == "black")
            #expect(try await greylistd(socket, "--black 192.0.2.7 spammer@bad.example bob@example.net") == "true")
            #expect(try await greylistd(socket, "--grey 192.0.2.7 spammer@bad.example bob@example.net") == "false")
            // Other shapes: the null sender (acl_check_data), the client alone, words of any kind.
            #expect(try await greylistd(socket, "--grey 198.51.100.1 bob@example.net") == "true")
            #expect(try await greylistd(socket, "198.51.100.2") == "grey")
            #expect(try await greylistd(socket, "helo.example alice@example.org bob@example.net") == "grey")
            clock.advance(301)
            #expect(try await greylistd(socket, "helo.example alice@example.org bob@example.net") == "white")
            #expect(try await greylistd(socket, "--grey 198.51.100.1 bob@example.net") == "false")
            // greylist(1) neither half-closes nor ends the line; a newline also ends a request.
            #expect(try await greylistd(socket, "192.0.2.77 carol@example.org bob@example.net", halfClose: false) == "grey")
            #expect(try await greylistd(socket, "--grey 192.0.2.78 carol@example.org bob@example.net\n", halfClose: false) == "true")
            // greylistd's errors.
            #expect(try await greylistd(socket, "--pink 192.0.2.7 a@b c@d") == "error: 'pink' is not a known state")
            #expect(try await greylistd(socket, "--grey") == "error: Missing argument")
            #expect(try await greylistd(socket, "save") == "greylistd data has been saved")
            let stats = try #require(try await greylistd(socket, "stats"))
            #expect(stats.contains("items are currently whitelisted") && stats.contains("items are currently greylisted"))
            #expect(try await greylistd(socket, "mrtg")?.split(separator: "\n").count == 4)
        }
        #expect(log.contains("reason=new_triplet") && log.contains("via=greylistd"))
    }

    @Test func changesByTheDaemonsOwnUserAreLogged() async throws {
        let dir = TemporaryDirectory()
        let socket = dir.path + "/socket"
        let log = CapturedLog()
        try await withDaemon(configure: try configure(dir), log: log) { _, _ async throws in
            // The test runs as the daemon's user: it has the authority.
            #expect(try await greylistd(socket, "add 192.0.2.50 list@example.org sub@example.net") == "Added to whitelist")
            #expect(try await greylistd(socket, "--grey 192.0.2.50 list@example.org sub@example.net") == "false")
            #expect(try await greylistd(socket, "delete 192.0.2.50 list@example.org sub@example.net") == "Removed from whitelist")
            #expect(try await greylistd(socket, "delete 192.0.2.50 list@example.org sub@example.net") == "error: Not found")
            #expect(try await greylistd(socket, "add --grey 192.0.2.51 a@example.org b@example.net") == "Added to greylist")
            #expect(try await greylistd(socket, "192.0.2.51 a@example.org b@example.net") == "grey")
            #expect(try await greylistd(socket, "add --black 192.0.2.52 a@example.org b@example.net")?
                        .hasPrefix("error: greylag keeps no blacklisted triplets") == true)
            #expect(try await greylistd(socket, "list")?.hasPrefix("error: list is not served here") == true)
        }
        #expect(log.contains("admin change by greylistd socket uid \(geteuid()) pid "))
        #expect(log.contains("add 192.0.2.0/24/list@example.org/sub@example.net: Added to whitelist"))
    }

    @Test func hostileClients() async throws {
        let dir = TemporaryDirectory()
        let socket = dir.path + "/socket"
        let log = CapturedLog()
        try await withDaemon(configure: try configure(dir), log: log) { _, _ async throws in
            // Longer than greylistd's one recv(16384): closed without an answer.
            #expect(try await greylistd(socket, bytes: [UInt8](repeating: 0x61, count: 20_000), halfClose: false) == nil)
            #expect(log.contains("request from local longer than 16384 bytes, closing"))
            #expect(try await greylistd(socket, "") == "error: No data received")
            #expect(try await greylistd(socket, bytes: Array("192.0.2.7 a@b\u{0}c d@e".utf8)) == "error: request contains the control byte 0x0")
            #expect(try await greylistd(socket, bytes: [0x31, 0x20, 0xC3, 0x28, 0x20, 0x41]) == "error: request is not UTF-8 text")
            #expect(log.contains("greylistd socket: bad request from local: request is not UTF-8 text"))
            // A client that sends nothing and keeps the connection is closed after the request timeout.
            let started = Date()
            #expect(try await greylistd(socket, "", halfClose: false) == nil)
            let waited = Date().timeIntervalSince(started)
            #expect(waited >= Double(GreylistdServerHandler.requestTimeout) - 1 && waited < 30)
            #expect(log.contains("greylistd socket: no request from local within 10 s, closing"))
            // The daemon still answers.
            #expect(try await greylistd(socket, "--grey 192.0.2.7 alice@example.org bob@example.net") == "true")
        }
    }

    @Test func storeUnavailableAnswersWhite() async throws {
        let dir = TemporaryDirectory()
        let socket = dir.path + "/socket"
        let log = CapturedLog()
        try await withDaemon(configure: try configure(dir), store: { _ in UnavailableStore(reason: "test: store down") },
                             log: log) { _, _ async throws in
            #expect(try await greylistd(socket, "--grey 192.0.2.7 alice@example.org bob@example.net") == "false")
            #expect(try await greylistd(socket, "192.0.2.7 alice@example.org bob@example.net") == "white")
            // The blacklist needs no store.
            #expect(try await greylistd(socket, "192.0.2.7 spammer@bad.example bob@example.net") == "black")
        }
        #expect(log.contains("greylistd socket: store unavailable, answering white"))
    }

    @Test func keysAreRestartOnlyAndCheckedAtLoad() throws {
        var a = GreylagConfiguration()
        var b = a
        b.greylistdListeners = [.unix(path: "/var/run/greylistd/socket")]
        b.greylistdSocketMode = 0o666
        #expect(ConfigReloader.restartOnly(a, b) == ["greylistd.listen", "greylistd.socket_mode"])
        a = try ConfigurationLoader.parse("[greylistd]\nlisten = [\"unix:/var/run/greylistd/socket\"]\n", file: "t.toml")
        #expect(a.greylistdListeners == [.unix(path: "/var/run/greylistd/socket")] && a.greylistdSocketMode == 0o660)
        #expect(throws: ConfigurationErrors.self) { try ConfigurationLoader.parse("[greylistd]\nsocket = \"x\"\n", file: "t.toml") }
        #expect(throws: ConfigurationErrors.self) {
            try ConfigurationLoader.parse("[greylistd]\nlisten = [\"127.0.0.1:10023\"]\n", file: "t.toml")
        }
    }
}
