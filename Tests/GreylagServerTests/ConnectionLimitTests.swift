import Foundation
import GreylagServer
import Testing

/// The cap on open MTA connections.
@Suite struct ConnectionLimitTests {
    @Test func connectionsOverTheCapAreClosedAtOnceWithOneWarning() async throws {
        let log = CapturedLog()
        try await withDaemon(configure: {
            $0.policyMaxConnections = 3
            $0.milterListeners = [.tcp(host: "127.0.0.1", port: 0)]
            $0.milterMaxConnections = 1
        }, log: log) { addresses, _ in
            var open: [PolicyTestClient] = []
            for _ in 0..<3 { open.append(try await PolicyTestClient(addresses[0])) }
            // Every one of the three is served.
            for (i, c) in open.enumerated() {
                #expect(try await c.ask(request(recipient: "r\(i)@example.net")) == defer300)
            }
            // The fourth and fifth are closed without an answer; one warning names the setting.
            for _ in 0..<2 {
                let over = try await PolicyTestClient(addresses[0])
                #expect(try await over.isClosedByServer())
            }
            let warnings = log.all.filter { $0.contains("refused: 3 connections are open, the limit set by policy.max_connections") }
            #expect(warnings.count == 1, "\(log.all)")
            // Closing one makes room again.
            open.removeFirst()
            var served = false
            for _ in 0..<50 where !served {
                try await Task.sleep(for: .milliseconds(20))
                let again = try await PolicyTestClient(addresses[0])
                served = try await again.ask(request(recipient: "again@example.net")) == defer300
            }
            #expect(served)
            // The milter listener has a cap of its own.
            let milter = try await PolicyTestClient(addresses[1])
            let overMilter = try await PolicyTestClient(addresses[1])
            #expect(try await overMilter.isClosedByServer())
            _ = milter
            #expect(log.contains("milter connection from"))
            #expect(open.count == 2)
        }
    }
}

/// Programs the tests start must not hold the test process's listening
/// sockets (NIO's are not close-on-exec), or a later test cannot bind its
/// port: Foundation's Process passes none on; the database helpers, which
/// start bash with posix_spawn, close them with `DatabaseOutageTests.closeInherited`.
@Suite struct ChildProcessDescriptorTests {
    @Test func startedProgramsHoldNoListeningSocketOfTheTests() async throws {
        // A listening socket as NIO makes them, numbered above 255 as in a
        // test process with many sockets open.
        let low = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let fd = fcntl(low, F_DUPFD, 300)
        close(low)
        defer { close(fd) }
        #expect(fd >= 300)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(listen(fd, 4) == 0)
        let inode = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")
        #expect(inode.hasPrefix("socket:["))

        let run = try await runProgram("/bin/ls", ["-l", "/proc/self/fd"], timeout: 20)
        #expect(run.status == 0)
        #expect(!run.output.contains(inode), "\(run.output)")

        let dir = TemporaryDirectory()
        let status = try await PolicyTestClient.offPool {
            spawnAndWait(["/bin/bash", "-c", DatabaseOutageTests.closeInherited + #" exec ls -l /proc/self/fd >"$1/fds""#,
                          "_", dir.path])
        }
        #expect(status == 0)
        let listed = try String(contentsOfFile: dir.path + "/fds", encoding: .utf8)
        #expect(listed.contains("/proc/") && !listed.contains(inode), "\(listed)")
    }
}
