import GRDB

/// A fixed set of SQL statements that one connection prepares on first use
/// and keeps for its life, found by index. GRDB's statement cache finds a
/// statement by hashing and comparing its whole SQL text, several times a
/// decision on the writer's hot path.
protocol PreparedQuery: CaseIterable, RawRepresentable where RawValue == Int {
    var sql: String { get }
}

/// The statements of `Query`, prepared on the connection they are asked on.
/// `@unchecked Sendable`: used only on the writer's connection, from the
/// jobs it runs one after another.
final class PreparedStatements<Query: PreparedQuery>: @unchecked Sendable {
    /// The connection the statements were prepared on.
    private var connection: ObjectIdentifier?
    private var prepared: [Statement?] = Array(repeating: nil, count: Query.allCases.count)

    init() {}

    /// `query`'s statement on `db`, prepared now if it is not yet. Another
    /// connection than the last one drops every statement first.
    func statement(_ query: Query, in db: Database) throws -> Statement {
        if connection != ObjectIdentifier(db) {
            drop()
            connection = ObjectIdentifier(db)
        }
        if let statement = prepared[query.rawValue] { return statement }
        let statement = try db.makeStatement(sql: query.sql)
        prepared[query.rawValue] = statement
        return statement
    }

    /// Finalizes every statement: SQLite does not close a connection that
    /// has statements left. Call it on the connection's queue before the
    /// pool closes.
    func drop() {
        prepared = Array(repeating: nil, count: Query.allCases.count)
        connection = nil
    }
}
