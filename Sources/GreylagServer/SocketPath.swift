import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The file-system side of greylag's unix sockets: the directory a socket
/// goes in, and the group it is given.
enum SocketPath {
    /// Makes the missing directories above the socket at `path`, each
    /// `0755` and owned by the daemon's user (as `mkdir -p` would with a
    /// umask of 022), so `unix:/run/greylag/policy.sock` starts on a host
    /// where `/run/greylag` does not exist yet. The socket's own mode says
    /// who may connect. Each directory made is logged.
    static func makeParent(of path: String, logger: Logger) throws {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        let parent = String(path[..<slash])
        var missing: [String] = []
        var dir = parent
        while !dir.isEmpty {
            var st = stat()
            if stat(dir, &st) == 0 {
                guard (st.st_mode & S_IFMT) == S_IFDIR else {
                    throw GreylagDaemon.ListenError(message: "\(dir) exists and is not a directory")
                }
                break
            }
            guard errno == ENOENT else {
                throw GreylagDaemon.ListenError(message: "cannot reach \(dir): \(String(cString: strerror(errno)))")
            }
            missing.append(dir)
            guard let up = dir.lastIndex(of: "/"), up != dir.startIndex else { break }
            dir = String(dir[..<up])
        }
        for dir in missing.reversed() {
            if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                throw GreylagDaemon.ListenError(message: "cannot create directory \(dir) for \(path): "
                                                + String(cString: strerror(errno)))
            }
            _ = chmod(dir, 0o755)  // whatever the umask
            logger.notice("created directory \(dir) (mode 0755) for the socket \(path)")
        }
    }

    /// The id of the group `name`, or nil when this host has none.
    static func groupID(_ name: String) -> gid_t? {
        var entry = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>? = nil
        var buffer = [CChar](repeating: 0, count: 16_384)
        let status = getgrnam_r(name, &entry, &buffer, buffer.count, &result)
        guard status == 0, result != nil else { return nil }
        return entry.gr_gid
    }

    /// Gives the socket at `path` the group `name`; a warning when that
    /// cannot be done (a daemon not running as root may only give a group
    /// it belongs to).
    static func setGroup(_ path: String, _ name: String, logger: Logger) {
        guard let gid = groupID(name) else {
            logger.warning("cannot give \(path) the group \(name): no such group")
            return
        }
        if chown(path, uid_t.max, gid) != 0 {  // uid (uid_t)-1: keep the owner
            logger.warning("cannot give \(path) the group \(name): \(String(cString: strerror(errno)))")
        }
    }
}
