import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The admin socket: a unix socket on which the daemon takes one JSON
/// `AdminRequest` per connection, terminated by a newline, and answers one
/// JSON `AdminResponse` line. Access is controlled by the socket file's
/// permissions (owner only by default).
final class AdminConnectionHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// A request longer than this closes the connection.
    static let maxRequest = 64 * 1024

    private let admin: AdminService
    private let logger: Logger
    private let received = Mutex(ByteBuffer())
    private let answered = Mutex(false)

    init(admin: AdminService, logger: Logger) {
        self.admin = admin
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        let line: ByteBuffer? = received.withLock { buffer in
            buffer.writeBuffer(&chunk)
            guard let nl = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            return buffer.readSlice(length: nl - buffer.readerIndex)
        }
        let channel = context.channel
        guard let line else {
            if received.withLock({ $0.readableBytes }) > Self.maxRequest {
                reply(.failure("request longer than \(Self.maxRequest) bytes"), on: channel)
            }
            return
        }
        guard answered.withLock({ done in defer { done = true }; return !done }) else { return }
        let request: AdminRequest
        do {
            request = try JSONDecoder().decode(AdminRequest.self, from: Data(line.readableBytesView))
        } catch {
            logger.warning("admin socket: unreadable request: \(error)")
            reply(.failure("unreadable request: \(error)"), on: channel)
            return
        }
        let admin = self.admin
        Task {
            // The socket's mode is the authority; the kernel's peer
            // credentials say who used it, for the audit log.
            let peer = await PeerCredentials.unixPeer(channel) ?? "an unknown peer"
            let response = await admin.handle(request, from: "admin socket \(peer)")
            self.reply(response, on: channel)
        }
    }

    private func reply(_ response: AdminResponse, on channel: any Channel) {
        var data = (try? JSONEncoder().encode(response)) ?? Data("{\"ok\":false}".utf8)
        data.append(UInt8(ascii: "\n"))
        let buffer = channel.allocator.buffer(bytes: data)
        channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            logger.warning("admin socket: no complete request within \(Self.requestTimeout) s, closing")
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Seconds a client may take to send its request.
    static let requestTimeout: Int64 = 30

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Talks to a running daemon's admin socket, for the CLI.
public enum AdminClient {
    public enum Failure: Error, CustomStringConvertible {
        /// No daemon listens on the socket (missing file or refused).
        case notRunning
        case io(String)

        public var description: String {
            switch self {
            case .notRunning: return "greylag is not running"
            case .io(let m): return m
            }
        }
    }

    /// `send` for async callers: the blocking socket I/O runs on its own
    /// thread, not on the concurrency pool.
    public static func request(_ request: AdminRequest, socket path: String, timeout: Int = 30) async throws -> AdminResponse {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try send(request, socket: path, timeout: timeout) })
            }
        }
    }

    /// Sends one request and waits up to `timeout` seconds for the answer.
    public static func send(_ request: AdminRequest, socket path: String, timeout: Int = 30) throws -> AdminResponse {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure.io("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw Failure.io("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if connected != 0 {
            if errno == ENOENT || errno == ECONNREFUSED { throw Failure.notRunning }
            throw Failure.io("cannot connect to \(path): \(String(cString: strerror(errno)))")
        }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var payload = try JSONEncoder().encode(request)
        payload.append(UInt8(ascii: "\n"))
        let written = payload.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == payload.count else { throw Failure.io("cannot write to \(path)") }
        var answer = Data()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n > 0 { answer.append(contentsOf: chunk[0..<n]); continue }
            if n == 0 { break }
            if errno == EINTR { continue }
            throw Failure.io(errno == EAGAIN ? "no answer from greylag within \(timeout) s" : String(cString: strerror(errno)))
        }
        do {
            return try JSONDecoder().decode(AdminResponse.self, from: answer)
        } catch {
            throw Failure.io("unreadable answer from greylag: \(error)")
        }
    }
}
