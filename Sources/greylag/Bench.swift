import ArgumentParser
import Foundation
import GreylagBench
import GreylagServer

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a policy server with persistent connections and print decisions/s and latency.")

    @Option(help: "Policy server as HOST:PORT or unix:/path.")
    var target = "127.0.0.1:10023"
    @Option(help: "Persistent connections.")
    var connections = 16
    @Option(help: "Share of requests with a brand-new triplet, 0 to 1.")
    var newShare = 0.3
    @Option(help: "Seconds to measure (after the warm-up).")
    var duration = 10.0
    @Option(help: "Seconds of warm-up not counted.")
    var warmup = 1.0
    @Option(help: "Stop after this many answers (0: run for --duration).")
    var requests = 0
    @Option(help: "Client event-loop threads.")
    var threads = 1
    @Option(help: "Label printed with the figures.")
    var label = "greylag"
    @Option(help: "Write every answered request (client, sender, recipient, action) to this file, tab-separated.")
    var transcript: String?

    func validate() throws {
        guard connections > 0 else { throw ValidationError("--connections must be at least 1") }
        guard (0...1).contains(newShare) else { throw ValidationError("--new-share must be between 0 and 1") }
    }

    func run() async throws {
        var options = PolicyLoadGenerator.Options()
        switch ListenAddress(target) {
        case .tcp(let host, let port)?:
            options.host = host
            options.port = port
        case .unix(let path)?:
            options.unixPath = path
        case nil:
            throw ValidationError("--target must be HOST:PORT, [IPV6]:PORT or unix:/path")
        }
        options.connections = connections
        options.newShare = newShare
        options.duration = duration
        options.warmup = warmup
        options.maxRequests = requests
        options.threads = threads
        let report = try await PolicyLoadGenerator(options: options).run(keepTranscript: transcript != nil)
        let actions = report.actions.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        print(String(format: "%@: %d connections, %.0f%% new: %.0f decisions/s, p50 %.3f ms, p99 %.3f ms, "
                     + "max %.3f ms (%d answers in %.2f s; %@)",
                     label, connections, newShare * 100, report.rate, report.percentile(0.5),
                     report.percentile(0.99), report.percentile(1.0), report.answered, report.seconds, actions))
        for error in Set(report.errors) { print("  error: \(error)") }
        if let transcript {
            var text = ""
            for a in report.transcript { text += "\(a.client)\t\(a.sender)\t\(a.recipient)\t\(a.action)\n" }
            try text.write(toFile: transcript, atomically: true, encoding: .utf8)
        }
    }
}
