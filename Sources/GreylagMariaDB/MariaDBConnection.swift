#if MariaDB
import CMariaDB
import Foundation

/// An error from the MariaDB client library or server, with its number.
public struct MariaDBError: Error, CustomStringConvertible {
    public var code: UInt32
    public var message: String

    public var description: String { "MariaDB error \(code): \(message)" }

    /// The connection is gone or unusable; it must be closed, not reused.
    var connectionLost: Bool {
        // CR_CONNECTION_ERROR, CR_CONN_HOST_ERROR, CR_SERVER_GONE_ERROR,
        // CR_SERVER_LOST, CR_COMMANDS_OUT_OF_SYNC, CR_SERVER_LOST_EXTENDED,
        // ER_CONNECTION_KILLED, ER_SERVER_SHUTDOWN, ER_CLIENT_INTERACTION_TIMEOUT.
        [2002, 2003, 2006, 2013, 2014, 2055, 1927, 1053, 4031].contains(code) || code >= 5000
    }

    /// A deadlock or lock wait timeout: the statement may simply be run again.
    var transient: Bool { code == 1213 || code == 1205 }
}

/// A parameter or column value.
enum SQLValue: Sendable, Hashable {
    case int(Int64)
    case text(String)
    case null

    var int: Int64? {
        switch self {
        case .int(let v): return v
        case .text(let s):
            // A DECIMAL (SUM of BIGINTs) or a float may not fit: clamp it, never trap.
            if let v = Int64(s) { return v }
            guard let d = Double(s), !d.isNaN else { return nil }
            if d >= 9_223_372_036_854_775_807.0 { return .max }
            if d <= -9_223_372_036_854_775_808.0 { return .min }
            return Int64(d)
        case .null: return nil
        }
    }

    var text: String? {
        switch self {
        case .int(let v): return String(v)
        case .text(let s): return s
        case .null: return nil
        }
    }
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    init(stringLiteral value: String) { self = .text(value) }
    init(integerLiteral value: Int64) { self = .int(value) }
    init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    init(_ value: Int64?) { self = value.map { .int($0) } ?? .null }
}

/// One blocking connection of the MariaDB Connector/C, with its prepared
/// statements. Used by one thread at a time (the pool sees to it).
final class MariaDBConnection {
    private let handle: UnsafeMutablePointer<MYSQL>
    private var statements: [String: UnsafeMutablePointer<MYSQL_STMT>] = [:]

    private static let libraryReady: Bool = { mysql_server_init(0, nil, nil) == 0 }()

    /// Connects; every read and write on the socket gives up after `timeout` seconds.
    init(_ s: MariaDBSettings) throws {
        guard Self.libraryReady, let handle = mysql_init(nil) else {
            throw MariaDBError(code: 2008, message: "the MariaDB client library could not be initialised")
        }
        self.handle = handle
        var seconds = UInt32(max(1, s.queryTimeout.rounded(.up)))
        mysql_options(handle, MYSQL_OPT_CONNECT_TIMEOUT, &seconds)
        mysql_options(handle, MYSQL_OPT_READ_TIMEOUT, &seconds)
        mysql_options(handle, MYSQL_OPT_WRITE_TIMEOUT, &seconds)
        mysql_options(handle, MYSQL_SET_CHARSET_NAME, "utf8mb4")
        // No option files: a stray ~/.my.cnf must not change what greylag connects to.
        let host = s.socket == nil ? s.host : "localhost"
        let ok = mysql_real_connect(handle, host, s.user, s.password, s.database,
                                    s.socket == nil ? UInt32(s.port) : 0, s.socket,
                                    UInt(CLIENT_MULTI_RESULTS | CLIENT_PS_MULTI_RESULTS))
        // On failure deinit closes the handle.
        if ok == nil { throw Self.error(of: handle) }
    }

    deinit {
        for stmt in statements.values { mysql_stmt_close(stmt) }
        mysql_close(handle)
    }

    private static func error(of handle: UnsafeMutablePointer<MYSQL>) -> MariaDBError {
        MariaDBError(code: mysql_errno(handle), message: String(cString: mysql_error(handle)))
    }

    private static func error(of stmt: UnsafeMutablePointer<MYSQL_STMT>) -> MariaDBError {
        MariaDBError(code: mysql_stmt_errno(stmt), message: String(cString: mysql_stmt_error(stmt)))
    }

    /// Runs SQL without parameters through the text protocol (schema
    /// statements, which cannot all be prepared); discards any result.
    func run(_ sql: String) throws {
        if mysql_real_query(handle, sql, UInt(sql.utf8.count)) != 0 { throw Self.error(of: handle) }
        repeat {
            if let result = mysql_store_result(handle) { mysql_free_result(result) }
            else if mysql_field_count(handle) != 0 { throw Self.error(of: handle) }
            let next = mysql_next_result(handle)
            if next > 0 { throw Self.error(of: handle) }
            if next < 0 { break }
        } while true
    }

    /// The rows of the first result set and the affected-row count of a
    /// prepared statement run with `parameters`.
    struct Outcome {
        var rows: [[SQLValue]] = []
        var affected: Int64 = 0
    }

    /// Prepares `sql` once per connection and runs it with `parameters`.
    @discardableResult
    func execute(_ sql: String, _ parameters: [SQLValue] = []) throws -> Outcome {
        let stmt = try statement(sql)
        let count = parameters.count
        let binds = UnsafeMutablePointer<MYSQL_BIND>.allocate(capacity: max(1, count))
        binds.initialize(repeating: MYSQL_BIND(), count: max(1, count))
        var owned: [UnsafeMutableRawPointer] = []
        defer {
            for p in owned { p.deallocate() }
            binds.deallocate()
        }
        for (i, value) in parameters.enumerated() {
            switch value {
            case .int(let v):
                let p = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                p.storeBytes(of: v, as: Int64.self)
                owned.append(p)
                binds[i].buffer_type = MYSQL_TYPE_LONGLONG
                binds[i].buffer = p
            case .text(let s):
                let bytes = Array(s.utf8)
                let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 1)
                p.copyMemory(from: bytes, byteCount: bytes.count)
                owned.append(p)
                binds[i].buffer_type = MYSQL_TYPE_STRING
                binds[i].buffer = p
                binds[i].buffer_length = UInt(bytes.count)
                binds[i].length_value = UInt(bytes.count)
                // With `length` nil the library reads `buffer_length`.
            case .null:
                binds[i].buffer_type = MYSQL_TYPE_NULL
            }
        }
        if count > 0, mysql_stmt_bind_param(stmt, binds) != 0 { throw Self.error(of: stmt) }
        if mysql_stmt_execute(stmt) != 0 {
            let error = Self.error(of: stmt)
            mysql_stmt_reset(stmt)
            throw error
        }
        var outcome = Outcome()
        outcome.rows = try fetchAll(stmt)
        outcome.affected = Int64(bitPattern: UInt64(mysql_stmt_affected_rows(stmt)))
        // A CALL answers with its result sets and then a status; read them all.
        while true {
            let next = mysql_stmt_next_result(stmt)
            if next > 0 {
                let error = Self.error(of: stmt)
                mysql_stmt_reset(stmt)
                throw error
            }
            if next < 0 { break }
            _ = try fetchAll(stmt)
        }
        mysql_stmt_free_result(stmt)
        return outcome
    }

    private func statement(_ sql: String) throws -> UnsafeMutablePointer<MYSQL_STMT> {
        if let stmt = statements[sql] { return stmt }
        guard let stmt = mysql_stmt_init(handle) else { throw Self.error(of: handle) }
        if mysql_stmt_prepare(stmt, sql, UInt(sql.utf8.count)) != 0 {
            let error = Self.error(of: stmt)
            mysql_stmt_close(stmt)
            throw error
        }
        statements[sql] = stmt
        return stmt
    }

    /// The rows of the current result set; none when it has no columns.
    private func fetchAll(_ stmt: UnsafeMutablePointer<MYSQL_STMT>) throws -> [[SQLValue]] {
        let columns = Int(mysql_stmt_field_count(stmt))
        guard columns > 0, let meta = mysql_stmt_result_metadata(stmt) else { return [] }
        defer { mysql_free_result(meta) }
        let fields = mysql_fetch_fields(meta)!
        let textCapacity = 512
        let binds = UnsafeMutablePointer<MYSQL_BIND>.allocate(capacity: columns)
        binds.initialize(repeating: MYSQL_BIND(), count: columns)
        let lengths = UnsafeMutablePointer<UInt>.allocate(capacity: columns)
        lengths.initialize(repeating: 0, count: columns)
        let nulls = UnsafeMutablePointer<my_bool>.allocate(capacity: columns)
        nulls.initialize(repeating: 0, count: columns)
        var integer = [Bool](repeating: false, count: columns)
        var buffers: [UnsafeMutableRawPointer] = []
        defer {
            for b in buffers { b.deallocate() }
            binds.deallocate()
            lengths.deallocate()
            nulls.deallocate()
        }
        for i in 0..<columns {
            switch fields[i].type {
            case MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_LONG, MYSQL_TYPE_INT24, MYSQL_TYPE_LONGLONG:
                integer[i] = true
                let b = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                buffers.append(b)
                binds[i].buffer_type = MYSQL_TYPE_LONGLONG
                binds[i].buffer = b
                binds[i].buffer_length = 8
            default:
                let b = UnsafeMutableRawPointer.allocate(byteCount: textCapacity, alignment: 1)
                buffers.append(b)
                binds[i].buffer_type = MYSQL_TYPE_STRING
                binds[i].buffer = b
                binds[i].buffer_length = UInt(textCapacity)
            }
            binds[i].length = lengths + i
            binds[i].is_null = nulls + i
        }
        if mysql_stmt_bind_result(stmt, binds) != 0 { throw Self.error(of: stmt) }
        var rows: [[SQLValue]] = []
        while true {
            let status = mysql_stmt_fetch(stmt)
            if status == MYSQL_NO_DATA { break }
            if status == 1 { throw Self.error(of: stmt) }
            var row: [SQLValue] = []
            row.reserveCapacity(columns)
            for i in 0..<columns {
                if nulls[i] != 0 {
                    row.append(.null)
                } else if integer[i] {
                    row.append(.int(binds[i].buffer!.load(as: Int64.self)))
                } else if Int(lengths[i]) <= textCapacity {
                    let b = UnsafeRawBufferPointer(start: binds[i].buffer, count: Int(lengths[i]))
                    row.append(.text(String(decoding: b, as: UTF8.self)))
                } else {
                    // Longer than the buffer (MYSQL_DATA_TRUNCATED): fetch this column whole.
                    let n = Int(lengths[i])
                    let big = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 1)
                    defer { big.deallocate() }
                    var one = MYSQL_BIND()
                    var length: UInt = 0
                    one.buffer_type = MYSQL_TYPE_STRING
                    one.buffer = big
                    one.buffer_length = UInt(n)
                    try withUnsafeMutablePointer(to: &length) { lp in
                        one.length = lp
                        if mysql_stmt_fetch_column(stmt, &one, UInt32(i), 0) != 0 { throw Self.error(of: stmt) }
                    }
                    row.append(.text(String(decoding: UnsafeRawBufferPointer(start: big, count: n), as: UTF8.self)))
                }
            }
            rows.append(row)
        }
        return rows
    }
}
#endif
