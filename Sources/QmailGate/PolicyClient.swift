#if canImport(Glibc)
import Glibc
#endif

/// A one-shot client of greylag's policy protocol for the short-lived qmail
/// helpers: connect (unix socket or TCP), send one request, read one reply,
/// all within a deadline. Plain system calls, so a helper process answers
/// in a few milliseconds.
public struct PolicyClient: Sendable {
    /// `unix:/path`, `/path` or `HOST:PORT` (`[::1]:PORT`).
    public var target: String
    /// Milliseconds for the whole exchange.
    public var timeoutMilliseconds: Int32

    public init(target: String, timeoutMilliseconds: Int32 = 3000) {
        self.target = target
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    /// Sends the attributes and returns the reply's `action=` value.
    public func ask(_ attributes: [(String, String)]) throws(Failure) -> String {
        let fd = try connectSocket()
        defer { close(fd) }
        var request = ""
        for (k, v) in attributes {
            // A value with a newline would end the request early: drop such characters.
            request += k + "=" + String(v.filter { $0 != "\n" && $0 != "\r" }) + "\n"
        }
        request += "\n"
        try writeAll(fd, Array(request.utf8))
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !(reply.count >= 2 && reply[reply.count - 1] == 10 && reply[reply.count - 2] == 10) {
            guard wait(fd, events: Int16(POLLIN)) else { throw Failure("no answer within \(timeoutMilliseconds) ms") }
            let n = read(fd, &buffer, buffer.count)
            if n == 0 { throw Failure("connection closed before the answer") }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw Failure("read: \(String(cString: strerror(errno)))")
            }
            reply += buffer[0..<n]
            if reply.count > 65_536 { throw Failure("answer too long") }
        }
        let text = String(decoding: reply, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("action=") {
            return String(line.dropFirst(7))
        }
        throw Failure("answer without action: \(text.prefix(200))")
    }

    private func connectSocket() throws(Failure) -> Int32 {
        var path: String? = nil
        if target.hasPrefix("unix:") { path = String(target.dropFirst(5)) } else if target.hasPrefix("/") { path = target }
        let fd: Int32
        let rc: Int32
        if let path {
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
                throw Failure("socket path too long: \(path)")
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            (fd, rc) = try startConnect(AF_UNIX, &address)
        } else {
            guard let colon = target.lastIndex(of: ":"), let port = UInt16(target[target.index(after: colon)...]) else {
                throw Failure("\(target) is not unix:/path, /path or HOST:PORT")
            }
            var host = String(target[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            if host.contains(":") {
                var a6 = sockaddr_in6()
                a6.sin6_family = sa_family_t(AF_INET6)
                a6.sin6_port = port.bigEndian
                guard inet_pton(AF_INET6, host, &a6.sin6_addr) == 1 else { throw Failure("bad address \(host)") }
                (fd, rc) = try startConnect(AF_INET6, &a6)
            } else {
                var a4 = sockaddr_in()
                a4.sin_family = sa_family_t(AF_INET)
                a4.sin_port = port.bigEndian
                guard inet_pton(AF_INET, host, &a4.sin_addr) == 1 else { throw Failure("bad address \(host)") }
                (fd, rc) = try startConnect(AF_INET, &a4)
            }
        }
        if rc != 0 {
            if errno != EINPROGRESS {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw Failure("cannot connect to \(target): \(reason)")
            }
            guard wait(fd, events: Int16(POLLOUT)) else {
                close(fd)
                throw Failure("cannot connect to \(target) within \(timeoutMilliseconds) ms")
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 {
                close(fd)
                throw Failure("cannot connect to \(target): \(String(cString: strerror(error)))")
            }
        }
        return fd
    }

    /// A non-blocking socket of `family` and its `connect` to `address`
    /// (0, or -1 with errno set, EINPROGRESS while under way).
    private func startConnect<Address>(_ family: Int32, _ address: inout Address) throws(Failure) -> (Int32, Int32) {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket: \(String(cString: strerror(errno)))") }
        setNonBlocking(fd)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<Address>.size)) }
        }
        return (fd, rc)
    }

    private func setNonBlocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    private func wait(_ fd: Int32, events: Int16) -> Bool {
        var p = pollfd(fd: fd, events: events, revents: 0)
        while true {
            let n = poll(&p, 1, timeoutMilliseconds)
            if n < 0 && errno == EINTR { continue }
            return n > 0
        }
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Failure) {
        var sent = 0
        while sent < bytes.count {
            guard wait(fd, events: Int16(POLLOUT)) else { throw Failure("cannot send within \(timeoutMilliseconds) ms") }
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw Failure("send: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }
}

/// What a policy action means for the qmail helpers.
public enum GateVerdict: Sendable, Hashable {
    case pass
    /// Deferred, with the daemon's text.
    case `defer`(String)
    /// Refused, with the daemon's text.
    case reject(String)

    /// Reads a policy `action=` value.
    public init(action: String) {
        let word = action.prefix { $0 != " " }
        let upper = word.uppercased()
        var text = action.dropFirst(word.count).drop { $0 == " " }
        // A numeric action may carry an enhanced code (`450 4.7.1 text`): keep the text only.
        if let digit = upper.first, digit == "4" || digit == "5", let code = text.split(separator: " ").first,
           code.first == digit, code.contains(".") {
            text = text.dropFirst(code.count).drop { $0 == " " }
        }
        if upper.hasPrefix("DEFER") || upper.first == "4" {
            self = .defer(String(text))
        } else if upper == "REJECT" || upper.first == "5" {
            self = .reject(String(text))
        } else {
            self = .pass
        }
    }
}

extension GateVerdict {
    /// The SMTP code of a numeric policy action (`450 4.7.1 text` gives
    /// `450` and `4.7.1`; `554 text` gives `554` and nil), or nil for a
    /// keyword action (`DEFER_IF_PERMIT`, `REJECT`). A `[[rules]]` entry's
    /// `defer_code` or `reject_code` reaches the helpers this way.
    public static func code(of action: String) -> (code: String, enhanced: String?)? {
        let words = action.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard let first = words.first, first.count == 3, let digit = first.first, digit == "4" || digit == "5",
              first.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        var enhanced: String? = nil
        if words.count > 1 {
            let parts = words[1].split(separator: ".", omittingEmptySubsequences: false)
            if parts.count == 3, parts[0] == String(digit),
               parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy { $0 >= "0" && $0 <= "9" } }) {
                enhanced = String(words[1])
            }
        }
        return (String(first), enhanced)
    }
}
