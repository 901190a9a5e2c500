import Foundation
import GreylagServer
import Testing

/// A blocking HTTP/1.1 request on a fresh connection (closed after it):
/// the status and the body.
func httpRequest(_ address: String, _ method: String = "GET", _ path: String, headers: [String: String] = [:],
                 body: String? = nil) async throws -> (status: Int, body: String) {
    let r = try await httpExchange(address, method, path, headers: headers, body: body)
    return (r.status, r.body)
}

/// One HTTP/1.1 request on a connection of its own; the response's status,
/// header fields (names lowercased) and body (de-chunked).
func httpExchange(_ address: String, _ method: String = "GET", _ path: String, headers: [String: String] = [:],
                  body: String? = nil) async throws -> (status: Int, headers: [String: String], body: String) {
    let colon = address.lastIndex(of: ":")!
    let host = String(address[..<colon])
    let port = Int(address[address.index(after: colon)...])!
    return try await PolicyTestClient.offPool {
        let fd = try PolicyTestClient.connectTCP(host, port)
        defer { close(fd) }
        // A Host, Content-Type given in `headers` replaces the default; a
        // write is sent as JSON, as the API asks (empty value: none sent).
        var head = "\(method) \(path) HTTP/1.1\r\nConnection: close\r\n"
        let named = Set(headers.keys.map { $0.lowercased() })
        if !named.contains("host") { head += "Host: \(host)\r\n" }
        if !named.contains("content-type") && (body != nil || method == "POST" || method == "DELETE") {
            head += "Content-Type: application/json\r\n"
        }
        for (k, v) in headers where !v.isEmpty { head += "\(k): \(v)\r\n" }
        if let body { head += "Content-Length: \(body.utf8.count)\r\n" }
        let request = Array((head + "\r\n" + (body ?? "")).utf8)
        guard write(fd, request, request.count) == request.count else { throw TestFailure("cannot send") }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw TestFailure("no HTTP head in \(text)") }
        let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let c = line.firstIndex(of: ":") else { continue }
            fields[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var body = String(text[split.upperBound...])
        if fields["transfer-encoding"] == "chunked" { body = dechunked(body) }
        return (status, fields, body)
    }
}

/// The body of a chunked HTTP response.
func dechunked(_ text: String) -> String {
    var bytes = Array(text.utf8)[...]
    var out: [UInt8] = []
    while let crlf = bytes.firstIndex(of: 13),
          let size = Int(String(decoding: bytes[bytes.startIndex..<crlf], as: UTF8.self), radix: 16), size > 0 {
        let start = crlf + 2
        out += bytes[start..<min(start + size, bytes.endIndex)]
        bytes = bytes[min(start + size + 2, bytes.endIndex)...]
    }
    return String(decoding: out, as: UTF8.self)
}

/// The value of the sample `name` (with its labels, as written) in a Prometheus text exposition.
func metricValue(_ exposition: String, _ name: String) -> Double? {
    exposition.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
}

func httpGet(_ address: String, _ path: String) async throws -> (status: Int, body: String) {
    try await httpRequest(address, "GET", path)
}

@Suite struct MetricsEndpointTests {
    @Test func decisionsLatenciesAndStoreStateAreExported() async throws {
        try await withDaemon(configure: {
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
            $0.expiryInterval = 1
            $0.sizesInterval = 1
        }) { addresses, _ in
            let http = try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5)
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)
            #expect(try await c.ask(request()) == "action=DEFER_IF_PERMIT Greylisted, please try again in 300 seconds")
            #expect(try await c.ask(request(recipient: "carol@example.net")) == defer300)
            // The expiry loop (every second here) refreshes the store's sizes.
            try await Task.sleep(for: .milliseconds(1500))
            let (status, body) = try await httpGet(String(http), "/metrics")
            #expect(status == 200)
            func value(_ name: String) -> Double? { metricValue(body, name) }
            #expect(value(#"greylag_decisions_total{via="policy",action="defer",reason="new_triplet"}"#) == 2, "\(body)")
            #expect(value(#"greylag_decisions_total{via="policy",action="defer",reason="too_early"}"#) == 1)
            #expect(value("greylag_decision_seconds_count") == 3)
            #expect(value("greylag_store_seconds_count") == 3)
            #expect(value("greylag_store_degraded") == 0)
            #expect(value(#"greylag_records{state="pending"}"#) == 2)
            #expect(value("greylag_connections") == 1)
            #expect((value("greylag_expiry_runs_total") ?? 0) >= 1)
            #expect(try await httpGet(String(http), "/nothing-here").status == 404)

            // The Prometheus project's own parser reads it (Debian's python3-prometheus-client).
            if E2E.enabled {
                let dir = TemporaryDirectory()
                try body.write(toFile: dir.path + "/metrics.txt", atomically: true, encoding: .utf8)
                let parsed = try await runProgram("/usr/bin/python3", ["-c", """
                    import sys
                    from prometheus_client.parser import text_string_to_metric_families
                    for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                        for sample in family.samples:
                            print(family.type, sample.name, sorted(sample.labels.items()), sample.value)
                    """, dir.path + "/metrics.txt"])
                #expect(parsed.status == 0, "\(parsed.output)")
                #expect(parsed.output.contains(
                    "counter greylag_decisions_total [('action', 'defer'), ('reason', 'new_triplet'), ('via', 'policy')] 2.0"),
                        "\(parsed.output)")
                #expect(parsed.output.contains("histogram greylag_decision_seconds_count [] 3.0"), "\(parsed.output)")
                #expect(parsed.output.contains("gauge greylag_store_degraded [] 0.0"), "\(parsed.output)")
            }
        }
    }

    @Test func theStoreIsCountedEverySizesIntervalNotEveryExpiryRun() async throws {
        try await withDaemon(configure: {
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
            $0.expiryInterval = 1
            $0.sizesInterval = 0
        }) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)
            try await Task.sleep(for: .milliseconds(1500))
            let body = try await httpGet(http, "/metrics").body
            func value(_ name: String) -> Double? { metricValue(body, name) }
            // The expiry loop ran twice, but with sizes_interval = 0 nothing was counted.
            #expect((value("greylag_expiry_runs_total") ?? 0) >= 2)
            #expect((value(#"greylag_records{state="pending"}"#) ?? 0) == 0)
        }
    }
}
