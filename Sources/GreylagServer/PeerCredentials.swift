import Foundation
import NIOCore

/// Who is on the other end of a connection, for the audit log of admin
/// changes: the address and port of a TCP peer, the uid and pid of a unix
/// socket peer (`SO_PEERCRED`, which the kernel fills in, so the peer
/// cannot lie about it).
enum PeerCredentials {
    /// Linux's `struct ucred`, which Glibc's module map leaves out (it needs _GNU_SOURCE).
    struct Credentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// "uid 1000 pid 4242" for a unix socket peer, nil when unknown.
    static func unixPeer(_ channel: any Channel) async -> String? {
        guard let credentials = await unixCredentials(channel) else { return nil }
        return "uid \(credentials.uid) pid \(credentials.pid)"
    }

    /// The kernel's credentials of a unix socket peer, nil when unknown.
    static func unixCredentials(_ channel: any Channel) async -> Credentials? {
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        return try? await provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED)).get()
    }

    /// "127.0.0.1:40312", "[::1]:40312", or the unix peer's uid and pid.
    static func describe(_ channel: any Channel) async -> String {
        switch channel.remoteAddress {
        case let address? where address.protocol != .unix: return GreylagDaemon.describe(address)
        default: return await unixPeer(channel) ?? "an unknown peer"
        }
    }
}
