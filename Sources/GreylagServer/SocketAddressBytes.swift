#if canImport(Glibc)
import Glibc
#endif

/// A unix socket address (`sockaddr_un` and its length), for a path or an
/// abstract name (`@name`, whose first byte becomes NUL).
struct SocketAddressBytes: Sendable {
    private let storage: [UInt8]
    let length: socklen_t

    struct Problem: Error {
        var message: String
    }

    /// `/path` or `@abstract`; anything else is refused with a reason.
    static func parse(_ text: String) -> Result<SocketAddressBytes, Problem> {
        var bytes = Array(text.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        guard abstract || bytes.first == UInt8(ascii: "/") else {
            return .failure(Problem(message: "neither an absolute path nor @name for an abstract socket"))
        }
        guard !bytes.contains(0) else { return .failure(Problem(message: "contains a NUL byte")) }
        if abstract { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        // A path needs its terminating NUL; an abstract name is counted by length.
        guard bytes.count + (abstract ? 0 : 1) <= capacity, bytes.count > (abstract ? 1 : 0) else {
            return .failure(Problem(message: bytes.count <= 1 ? "empty name" : "longer than \(capacity - 1) bytes"))
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        let length = offset + bytes.count + (abstract ? 0 : 1)
        let storage = withUnsafeBytes(of: &address) { Array($0) }
        return .success(SocketAddressBytes(storage: storage, length: socklen_t(length)))
    }

    private init(storage: [UInt8], length: socklen_t) {
        self.storage = storage
        self.length = length
    }

    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        storage.withUnsafeBytes { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }
}
