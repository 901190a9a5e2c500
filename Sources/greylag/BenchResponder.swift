import ArgumentParser
import Foundation
import GreylagBench
import GreylagServer

struct BenchResponder: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-responder",
        abstract: "Serve a do-nothing policy responder (DUNNO to everything) as a benchmark baseline.")

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = "127.0.0.1:10099"

    func run() async throws {
        guard case .tcp(let host, let port)? = ListenAddress(listen) else {
            throw ValidationError("--listen must be HOST:PORT or [IPV6]:PORT")
        }
        let channel = try await DunnoResponder.start(host: host, port: port)
        print("bench-responder listening on \(listen)")
        try await channel.closeFuture.get()
    }
}
