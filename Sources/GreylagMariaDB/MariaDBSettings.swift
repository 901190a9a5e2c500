import GreylagStore

/// Where the shared MySQL/MariaDB store is. Always compiled, so that the
/// configuration can name the backend; the backend itself exists only in
/// builds with the `MariaDB` trait (see `MariaDBBackend.isAvailable`).
public struct MariaDBSettings: Sendable, Hashable {
    public var host: String
    public var port: Int
    /// A unix socket path; when set, host and port are not used.
    public var socket: String?
    public var user: String
    public var password: String?
    public var database: String
    /// Seconds a query may take, queueing included, before it fails.
    public var queryTimeout: Double
    /// Connections (and threads blocking on them) at most.
    public var maxConnections: Int

    public init(host: String = "127.0.0.1", port: Int = 3306, socket: String? = nil, user: String = "greylag",
                password: String? = nil, database: String = "greylag", queryTimeout: Double = 5,
                maxConnections: Int = 16) {
        self.host = host
        self.port = port
        self.socket = socket
        self.user = user
        self.password = password
        self.database = database
        self.queryTimeout = queryTimeout
        self.maxConnections = maxConnections
    }

    /// `mysql://greylag@db1:3306/greylag`, for logs (never the password).
    public var description: String {
        if let socket { return "mysql://\(user)@localhost/\(database)?socket=\(socket)" }
        return "mysql://\(user)@\(host):\(port)/\(database)"
    }
}

/// Opens the MySQL/MariaDB store, or says the build lacks it.
public enum MariaDBBackend {
    /// True when greylag was built with `--traits MariaDB`.
    public static var isAvailable: Bool {
        #if MariaDB
        return true
        #else
        return false
        #endif
    }

    public struct NotBuiltError: Error, CustomStringConvertible {
        public init() {}
        public var description: String {
            "this greylag was built without the MySQL/MariaDB backend; build it with "
                + "`swift build -c release --traits MariaDB` (needs libmariadb-dev)"
        }
    }

    public static func open(_ settings: MariaDBSettings) async throws -> any GreylistStore {
        #if MariaDB
        return try await MariaDBStore(settings: settings)
        #else
        throw NotBuiltError()
        #endif
    }
}
