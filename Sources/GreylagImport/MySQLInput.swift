import Foundation

/// One value of a MySQL row.
enum SQLValue: Equatable {
    case null
    /// A quoted string (escapes resolved) or a `mysql --batch` field.
    case string([UInt8])
    /// An unquoted numeric literal.
    case number([UInt8])
    /// A hex literal (`0xC0000201`, `X'C0000201'`), as `mysqldump --hex-blob` writes binary columns.
    case binary([UInt8])

    /// The bytes of a non-null value.
    var bytes: [UInt8]? {
        switch self {
        case .null: return nil
        case .string(let b), .number(let b), .binary(let b): return b
        }
    }

    /// The value as text, nil for NULL.
    var text: String? { bytes.map { $0.text } }
}

/// Column names and where each is, shared by the rows they belong to.
struct ColumnMap {
    let names: [String]
    let index: [String: Int]

    init(_ names: [String]) {
        self.names = names
        var index: [String: Int] = [:]
        for (i, n) in names.enumerated() where index[n] == nil { index[n] = i }
        self.index = index
    }
}

/// One row with the line where it starts.
struct SQLRow {
    var line: Int
    /// Column names given with the row (INSERT column list, batch header), lower-cased.
    var columns: ColumnMap?
    var values: [SQLValue]
    /// 1-based position of the row in its INSERT statement (1 for batch rows).
    var position: Int
}

/// The layout a reader expects of a table, used when the input names no columns.
struct TableSchema {
    var name: String
    /// Column names in the order of the real table definition.
    var columns: [String]
    /// Columns a header must name for the table to be recognised.
    var required: Set<String>
    /// Columns of type `TIMESTAMP` in the real definition.
    var timestampColumns: Set<String>
}

/// The rows read for one table.
struct SQLTable {
    var schema: TableSchema
    /// Columns from the dump's CREATE TABLE, lower-cased; nil without one.
    var columns: [String]? {
        didSet { defaultColumns = ColumnMap(columns ?? schema.columns) }
    }
    /// The columns of rows that name none: the CREATE TABLE's, or the schema's.
    private(set) var defaultColumns: ColumnMap
    /// Column types from the CREATE TABLE (first word, lower-cased).
    var types: [String: String] = [:]
    var rows: [SQLRow] = []
    /// The dump set `TIME_ZONE='+00:00'`, so its TIMESTAMP values are UTC.
    var utcTimestamps = false

    init(schema: TableSchema) {
        self.schema = schema
        self.defaultColumns = ColumnMap(schema.columns)
    }

    /// The columns a row's values are in: its own list, the CREATE TABLE, or the schema.
    func columns(of row: SQLRow) -> ColumnMap {
        row.columns ?? defaultColumns
    }

    /// Whether the values of `column` are UTC regardless of the server zone.
    func isUTC(_ column: String) -> Bool {
        guard utcTimestamps else { return false }
        if let t = types[column] { return t == "timestamp" }
        return schema.timestampColumns.contains(column)
    }
}

/// Row access by column name.
struct SQLRecord {
    let table: SQLTable
    let row: SQLRow
    private let index: [String: Int]

    init(table: SQLTable, row: SQLRow) {
        self.table = table
        self.row = row
        self.index = table.columns(of: row).index
    }

    var line: Int { row.line }

    /// Throws unless the row has one value for each of its columns (values
    /// cannot be placed by position otherwise).
    func checkWidth() throws(RowError) {
        let count = table.columns(of: row).names.count
        guard row.values.count == count else {
            throw RowError("has \(row.values.count) values for the \(count) columns of `\(table.schema.name)`")
        }
    }

    /// The value of a column; NULL when the row lacks it.
    subscript(_ column: String) -> SQLValue {
        guard let i = index[column], i < row.values.count else { return .null }
        return row.values[i]
    }

    /// Text of a column, nil for NULL.
    func text(_ column: String) -> String? { self[column].text }

    /// A column as an integer: nil for NULL, throws a reason when it is not one.
    func integer(_ column: String) throws(RowError) -> Int64? {
        guard let b = self[column].bytes else { return nil }
        guard let v = parseInt64(b) else { throw RowError("\(column) is not a number: \(b.text)") }
        return try ImportLimits.count(v, column)
    }

    /// A `DATETIME`/`TIMESTAMP` column as Unix seconds (0 for the zero
    /// date): nil for NULL, throws a reason when it is not a date. A bare
    /// integer is taken as Unix seconds.
    func time(_ column: String, zone: TimeZone) throws(RowError) -> Int64? {
        guard let b = self[column].bytes else { return nil }
        if let v = parseInt64(b) { return try ImportLimits.time(v, column) }
        guard let c = CivilTime.parse(b) else { throw RowError("\(column) is not a date and time: \(b.text)") }
        return CivilTime.unixSeconds(c, in: table.isUTC(column) ? CivilTime.utcZone : zone)
    }
}

/// Why one row cannot be imported.
struct RowError: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

/// What was read from a MySQL dump or batch output.
struct SQLTables {
    var tables: [SQLTable]
    /// Rows the reader itself could not parse.
    var problems: [ImportProblem]
}

/// Reads `mysqldump` SQL or `mysql --batch` output into rows.
enum MySQLInput {
    /// Reads the tables in `schemas` from `bytes`, choosing the encoding by
    /// the first line. Throws when the input is neither encoding, or names
    /// none of the tables.
    static func read(_ bytes: [UInt8], expecting schemas: [TableSchema]) throws(ImportError) -> SQLTables {
        if looksLikeSQL(bytes) {
            var reader = SQLDumpReader(bytes)
            return try reader.read(schemas)
        }
        return try readBatch(bytes, schemas: schemas)
    }

    static let statementKeywords: Set<String> = [
        "create", "insert", "replace", "drop", "set", "lock", "unlock", "use", "alter", "delimiter",
        "start", "commit", "begin", "rollback", "grant", "revoke", "select", "update", "delete",
        "truncate", "flush", "analyze", "optimize", "rename", "savepoint", "release", "call",
    ]

    /// Whether the first non-blank line starts like SQL: a comment, or a statement keyword.
    static func looksLikeSQL(_ bytes: [UInt8]) -> Bool {
        var i = 0
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D { i += 1 }
        guard i < bytes.count else { return false }
        let rest = bytes[i...]
        if rest.starts(with: "--".utf8) || rest.starts(with: "/*".utf8) || rest.first == UInt8(ascii: "#") { return true }
        var word: [UInt8] = []
        for b in rest {
            guard (b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "z") else { break }
            word.append(b | 0x20)
        }
        guard let next = rest.dropFirst(word.count).first else { return false }
        return statementKeywords.contains(word.text) && (next == 0x20 || next == 0x09 || next == 0x0A || next == 0x0D)
    }

    // MARK: - mysql --batch

    /// Tab-separated rows with a header line; `NULL` for null; `\0 \t \n \\` escapes.
    static func readBatch(_ bytes: [UInt8], schemas: [TableSchema]) throws(ImportError) -> SQLTables {
        var lines: [(Int, ArraySlice<UInt8>)] = []
        var start = 0
        var lineNo = 1
        for i in 0...bytes.count where i == bytes.count || bytes[i] == 0x0A {
            var line = bytes[start..<i]
            if line.last == 0x0D { line = line.dropLast() }
            if !(i == bytes.count && line.isEmpty) { lines.append((lineNo, line)) }
            lineNo += 1
            start = i + 1
        }
        guard let firstIndex = lines.firstIndex(where: { !$0.1.isEmpty }) else {
            throw ImportError(line: 1, "empty input: expected mysqldump SQL or mysql --batch output")
        }
        let (headerLine, headerBytes) = lines[firstIndex]
        let header = headerBytes.split(separator: 0x09, omittingEmptySubsequences: false)
            .map { Array($0).text.trimmingCharacters(in: .whitespaces).lowercased() }

        // A header names the columns; without one (--skip-column-names) the
        // first field is the numeric id of a row.
        let schema: TableSchema
        var names: ColumnMap?
        var dataStart = firstIndex + 1
        if let s = schemas.first(where: { $0.required.isSubset(of: Set(header)) }) {
            schema = s
            names = ColumnMap(header)
        } else if let first = header.first, parseInt64(Array(first.utf8)) != nil, header.count > 1 {
            schema = guessSchema(fieldCount: header.count, firstRow: headerBytes, schemas: schemas)
            dataStart = firstIndex
        } else {
            let wanted = schemas.map { "\($0.name) (\($0.required.sorted().joined(separator: ", ")))" }
            throw ImportError(line: headerLine, "not mysqldump SQL, and not mysql --batch output with a header naming the columns of "
                              + wanted.joined(separator: " or "))
        }
        var table = SQLTable(schema: schema)
        var problems: [ImportProblem] = []
        let expected = names?.names.count ?? schema.columns.count
        for (no, line) in lines[dataStart...] where !line.isEmpty {
            let fields = line.split(separator: 0x09, omittingEmptySubsequences: false)
            guard fields.count == expected else {
                problems.append(ImportProblem(line: no, reason: "has \(fields.count) tab-separated fields, expected \(expected)"))
                continue
            }
            table.rows.append(SQLRow(line: no, columns: names, values: fields.map(batchValue), position: 1))
        }
        return SQLTables(tables: [table], problems: problems)
    }

    /// Headerless batch output: the schema whose column count matches; when
    /// several do, the one whose fifth column holds a date (greylisting_data)
    /// or not (greylisting_lists).
    static func guessSchema(fieldCount: Int, firstRow: ArraySlice<UInt8>, schemas: [TableSchema]) -> TableSchema {
        let candidates = schemas.filter { $0.columns.count == fieldCount }
        guard candidates.count > 1 else { return candidates.first ?? schemas[0] }
        let fields = firstRow.split(separator: 0x09, omittingEmptySubsequences: false)
        let fifthIsDate = fields.count > 4 && CivilTime.parse(fields[4]) != nil
        return candidates.first(where: { ($0.columns.count > 4 && $0.columns[4].hasSuffix("expires")) == fifthIsDate })
            ?? candidates[0]
    }

    static func batchValue(_ field: ArraySlice<UInt8>) -> SQLValue {
        if field.elementsEqual("NULL".utf8) { return .null }
        guard field.contains(UInt8(ascii: "\\")) else { return .string(Array(field)) }
        var out: [UInt8] = []
        out.reserveCapacity(field.count)
        var escaped = false
        for b in field {
            if escaped {
                switch b {
                case UInt8(ascii: "0"): out.append(0)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
                default: out.append(UInt8(ascii: "\\")); out.append(b)
                }
                escaped = false
            } else if b == UInt8(ascii: "\\") {
                escaped = true
            } else {
                out.append(b)
            }
        }
        if escaped { out.append(UInt8(ascii: "\\")) }
        return .string(out)
    }
}

// MARK: - mysqldump

/// A tokenizer and statement reader for the SQL `mysqldump` writes.
struct SQLDumpReader {
    enum Token: Equatable {
        case word([UInt8])            // bare identifier or keyword
        case identifier(String)       // `quoted`
        case string([UInt8])
        case number([UInt8])
        case binary([UInt8])
        case punct(UInt8)
        case delimiter
        case end
    }

    let bytes: [UInt8]
    var pos = 0
    var line = 1
    var delimiter: [UInt8] = [UInt8(ascii: ";")]
    var utcTimestamps = false
    var atStatementStart = true

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    // MARK: Tokens

    mutating func skipBlanksAndComments() throws(ImportError) {
        while pos < bytes.count {
            let b = bytes[pos]
            if b == 0x0A { line += 1; pos += 1; continue }
            if b == 0x20 || b == 0x09 || b == 0x0D { pos += 1; continue }
            if b == UInt8(ascii: "#") || (b == UInt8(ascii: "-") && at("--") &&
                                            (pos + 2 >= bytes.count || bytes[pos + 2] <= 0x20)) {
                while pos < bytes.count && bytes[pos] != 0x0A { pos += 1 }
                continue
            }
            if b == UInt8(ascii: "/") && at("/*") {
                let startLine = line
                let start = pos
                pos += 2
                while pos < bytes.count && !at("*/") {
                    if bytes[pos] == 0x0A { line += 1 }
                    pos += 1
                }
                guard pos < bytes.count else { throw ImportError(line: startLine, "unterminated /* comment") }
                pos += 2
                noteTimeZone(bytes[start..<pos])
                continue
            }
            return
        }
    }

    /// mysqldump's `/*!40103 SET TIME_ZONE='+00:00' */`: TIMESTAMP values are UTC.
    mutating func noteTimeZone(_ text: ArraySlice<UInt8>) {
        let lower = text.map { $0 | ($0 >= 0x41 && $0 <= 0x5A ? 0x20 : 0) }.text
        if lower.contains("time_zone") && lower.replacingOccurrences(of: " ", with: "").contains("time_zone='+00:00'") {
            utcTimestamps = true
        }
    }

    func at(_ s: String) -> Bool {
        var i = pos
        for c in s.utf8 {
            guard i < bytes.count, bytes[i] == c else { return false }
            i += 1
        }
        return true
    }

    func atDelimiter() -> Bool {
        guard pos + delimiter.count <= bytes.count else { return false }
        return bytes[pos..<(pos + delimiter.count)].elementsEqual(delimiter)
    }

    static func isWordByte(_ b: UInt8) -> Bool {
        (b | 0x20 >= UInt8(ascii: "a") && b | 0x20 <= UInt8(ascii: "z")) || (b >= 0x30 && b <= 0x39)
            || b == UInt8(ascii: "_") || b == UInt8(ascii: "$") || b >= 0x80
    }

    mutating func next() throws(ImportError) -> (Token, Int) {
        try skipBlanksAndComments()
        guard pos < bytes.count else { return (.end, line) }
        let tokenLine = line
        if atDelimiter() {
            pos += delimiter.count
            return (.delimiter, tokenLine)
        }
        let b = bytes[pos]
        switch b {
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            return (.string(try quoted(b)), tokenLine)
        case UInt8(ascii: "`"):
            return (.identifier(try quoted(b).text), tokenLine)
        case UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: ".") where pos + 1 < bytes.count && bytes[pos + 1] >= 0x30 && bytes[pos + 1] <= 0x39:
            if b == UInt8(ascii: "0"), pos + 1 < bytes.count, bytes[pos + 1] | 0x20 == UInt8(ascii: "x") {
                let start = pos + 2
                pos = start
                while pos < bytes.count, Self.hexValue(bytes[pos]) != nil { pos += 1 }
                guard let v = Self.hexBytes(bytes[start..<pos]) else { throw ImportError(line: tokenLine, "bad hex literal") }
                return (.binary(v), tokenLine)
            }
            let start = pos
            while pos < bytes.count {
                let c = bytes[pos]
                if (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: ".") || c | 0x20 == UInt8(ascii: "e") {
                    pos += 1
                } else if (c == UInt8(ascii: "-") || c == UInt8(ascii: "+")) && bytes[pos - 1] | 0x20 == UInt8(ascii: "e") {
                    pos += 1
                } else {
                    break
                }
            }
            return (.number(Array(bytes[start..<pos])), tokenLine)
        default:
            if Self.isWordByte(b) {
                // X'hex' and B'bits' literals
                if (b | 0x20 == UInt8(ascii: "x")), pos + 1 < bytes.count, bytes[pos + 1] == UInt8(ascii: "'") {
                    pos += 1
                    let digits = try quoted(UInt8(ascii: "'"))
                    guard let v = Self.hexBytes(digits[...]) else { throw ImportError(line: tokenLine, "bad hex literal") }
                    return (.binary(v), tokenLine)
                }
                let start = pos
                while pos < bytes.count, Self.isWordByte(bytes[pos]) { pos += 1 }
                return (.word(Array(bytes[start..<pos])), tokenLine)
            }
            pos += 1
            return (.punct(b), tokenLine)
        }
    }

    /// A quoted string or identifier: doubled quotes, and for strings
    /// MySQL's backslash escapes.
    mutating func quoted(_ quote: UInt8) throws(ImportError) -> [UInt8] {
        let startLine = line
        pos += 1
        var out: [UInt8] = []
        while pos < bytes.count {
            let c = bytes[pos]
            if c == quote {
                if pos + 1 < bytes.count && bytes[pos + 1] == quote {
                    out.append(quote)
                    pos += 2
                    continue
                }
                pos += 1
                return out
            }
            if c == UInt8(ascii: "\\") && quote != UInt8(ascii: "`") && pos + 1 < bytes.count {
                let e = bytes[pos + 1]
                switch e {
                case UInt8(ascii: "0"): out.append(0)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "Z"): out.append(0x1A)
                case UInt8(ascii: "%"), UInt8(ascii: "_"): out.append(c); out.append(e)
                default: out.append(e)
                }
                if e == 0x0A { line += 1 }
                pos += 2
                continue
            }
            if c == 0x0A { line += 1 }
            out.append(c)
            pos += 1
        }
        throw ImportError(line: startLine, "unterminated quoted string")
    }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - 0x30
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - 0x57
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - 0x37
        default: return nil
        }
    }

    static func hexBytes(_ digits: ArraySlice<UInt8>) -> [UInt8]? {
        var d = Array(digits)
        if d.count % 2 == 1 { d.insert(UInt8(ascii: "0"), at: 0) }
        var out: [UInt8] = []
        out.reserveCapacity(d.count / 2)
        var i = 0
        while i < d.count {
            guard let h = hexValue(d[i]), let l = hexValue(d[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }

    // MARK: Statements

    mutating func read(_ schemas: [TableSchema]) throws(ImportError) -> SQLTables {
        var tables: [String: SQLTable] = [:]
        var problems: [ImportProblem] = []
        var seen: [String] = []
        var first = true
        while true {
            try skipBlanksAndComments()
            if pos >= bytes.count { break }
            // DELIMITER is a client command that runs to the end of its line.
            if atWord("delimiter") {
                pos += "delimiter".utf8.count
                while pos < bytes.count, bytes[pos] == 0x20 || bytes[pos] == 0x09 { pos += 1 }
                let start = pos
                while pos < bytes.count, bytes[pos] > 0x20 { pos += 1 }
                if pos > start { delimiter = Array(bytes[start..<pos]) }
                continue
            }
            let (tok, tokLine) = try next()
            switch tok {
            case .end:
                break
            case .delimiter:
                continue
            case .word(let w):
                let keyword = w.text.lowercased()
                if first && !MySQLInput.statementKeywords.contains(keyword) {
                    throw ImportError(line: tokLine, "`\(w.text)` does not start an SQL statement")
                }
                first = false
                switch keyword {
                case "create":
                    try readCreate(schemas: schemas, tables: &tables, seen: &seen)
                case "insert", "replace":
                    try readInsert(line: tokLine, schemas: schemas, tables: &tables, problems: &problems, seen: &seen)
                case "set":
                    let start = pos
                    try skipStatement()
                    noteTimeZone(bytes[start..<pos])
                default:
                    try skipStatement()
                }
                continue
            default:
                throw ImportError(line: tokLine, "not an SQL statement")
            }
            break
        }
        for s in schemas { tables[s.name]?.utcTimestamps = utcTimestamps }
        let found = schemas.compactMap { tables[$0.name] }
        guard !found.isEmpty else {
            let names = schemas.map { "`\($0.name)`" }.joined(separator: " or ")
            let others = seen.isEmpty ? "no tables" : "tables " + seen.map { "`\($0)`" }.joined(separator: ", ")
            throw ImportError(line: 1, "the dump has no CREATE TABLE or INSERT for \(names) (it has \(others))")
        }
        return SQLTables(tables: found, problems: problems)
    }

    func atWord(_ word: String) -> Bool {
        var i = pos
        for c in word.utf8 {
            guard i < bytes.count, bytes[i] | 0x20 == c else { return false }
            i += 1
        }
        return i < bytes.count && !Self.isWordByte(bytes[i])
    }

    /// Skips to the end of the statement (tokens, so strings may hold the delimiter).
    mutating func skipStatement() throws(ImportError) {
        while true {
            let (t, _) = try next()
            if t == .delimiter || t == .end { return }
        }
    }

    /// A table name, possibly qualified by a database: the last part, lower-cased.
    mutating func tableName(after tok: Token) throws(ImportError) -> (String?, Token, Int) {
        var name: String?
        var t = tok
        var l = line
        while true {
            switch t {
            case .identifier(let s): name = s.lowercased()
            case .word(let w): name = w.text.lowercased()
            default: return (name, t, l)
            }
            (t, l) = try next()
            guard t == .punct(UInt8(ascii: ".")) else { return (name, t, l) }
            (t, l) = try next()
        }
    }

    mutating func readCreate(schemas: [TableSchema], tables: inout [String: SQLTable],
                             seen: inout [String]) throws(ImportError) {
        var (t, _) = try next()
        if case .word(let w) = t, w.text.lowercased() == "temporary" { (t, _) = try next() }
        guard case .word(let w) = t, w.text.lowercased() == "table" else { return try skipStatement() }
        (t, _) = try next()
        if case .word(let w) = t, w.text.lowercased() == "if" {
            _ = try next(); _ = try next()          // NOT EXISTS
            (t, _) = try next()
        }
        let (name, after, _) = try tableName(after: t)
        guard let name else { return try skipStatement() }
        if !seen.contains(name) { seen.append(name) }
        guard after == .punct(UInt8(ascii: "(")), let schema = schemas.first(where: { $0.name == name }) else {
            return try skipStatement()
        }
        // Column definitions, split at top-level commas.
        var columns: [String] = []
        var types: [String: String] = [:]
        var definition: [Token] = []
        var depth = 0
        func finish(_ def: [Token]) {
            guard let head = def.first else { return }
            let name: String
            switch head {
            case .identifier(let s): name = s.lowercased()
            case .word(let w):
                let k = w.text.lowercased()
                let nonColumns: Set<String> = ["primary", "key", "index", "unique", "fulltext", "spatial",
                                               "constraint", "foreign", "check", "period"]
                if nonColumns.contains(k) { return }
                name = k
            default: return
            }
            columns.append(name)
            if def.count > 1, case .word(let type) = def[1] { types[name] = type.text.lowercased() }
        }
        while true {
            let (tok, l) = try next()
            switch tok {
            case .end, .delimiter:
                throw ImportError(line: l, "CREATE TABLE `\(name)` ends before its closing parenthesis")
            case .punct(UInt8(ascii: "(")):
                depth += 1
                definition.append(tok)
            case .punct(UInt8(ascii: ")")) where depth == 0:
                finish(definition)
                var table = tables[name] ?? SQLTable(schema: schema)
                table.columns = columns
                table.types = types
                tables[name] = table
                return try skipStatement()
            case .punct(UInt8(ascii: ")")):
                depth -= 1
                definition.append(tok)
            case .punct(UInt8(ascii: ",")) where depth == 0:
                finish(definition)
                definition = []
            default:
                definition.append(tok)
            }
        }
    }

    mutating func readInsert(line statementLine: Int, schemas: [TableSchema], tables: inout [String: SQLTable],
                             problems: inout [ImportProblem], seen: inout [String]) throws(ImportError) {
        var (t, l) = try next()
        while case .word(let w) = t, ["low_priority", "delayed", "high_priority", "ignore", "into"].contains(w.text.lowercased()) {
            (t, l) = try next()
        }
        let (maybeName, afterName, afterLine) = try tableName(after: t)
        guard let name = maybeName else {
            throw ImportError(line: l, "INSERT without a table name")
        }
        if !seen.contains(name) { seen.append(name) }
        guard let schema = schemas.first(where: { $0.name == name }) else { return try skipStatement() }
        var table = tables[name] ?? SQLTable(schema: schema)
        defer { tables[name] = table }

        // Optional column list.
        var names: ColumnMap?
        t = afterName
        l = afterLine
        if t == .punct(UInt8(ascii: "(")) {
            var list: [String] = []
            while true {
                (t, l) = try next()
                switch t {
                case .identifier(let s): list.append(s.lowercased())
                case .word(let w): list.append(w.text.lowercased())
                case .punct(UInt8(ascii: ",")): continue
                case .punct(UInt8(ascii: ")")): break
                default: throw ImportError(line: l, "bad column list in INSERT INTO `\(name)`")
                }
                if t == .punct(UInt8(ascii: ")")) { break }
            }
            names = ColumnMap(list)
            (t, l) = try next()
        }
        guard case .word(let v) = t, ["values", "value"].contains(v.text.lowercased()) else {
            problems.append(ImportProblem(line: statementLine,
                                          reason: "INSERT INTO `\(name)` without VALUES is not supported"))
            return try skipStatement()
        }
        var position = 0
        while true {
            (t, l) = try next()
            guard t == .punct(UInt8(ascii: "(")) else {
                throw ImportError(line: l, "expected ( to start a row of INSERT INTO `\(name)`")
            }
            position += 1
            let rowLine = l
            var values: [SQLValue] = []
            var failure: String?
            while true {
                let (value, problem, terminator) = try readValue()
                if let problem, failure == nil { failure = "value \(values.count + 1): \(problem)" }
                values.append(value)
                if terminator == .punct(UInt8(ascii: ")")) { break }
                guard terminator == .punct(UInt8(ascii: ",")) else {
                    throw ImportError(line: line, "expected , or ) in a row of INSERT INTO `\(name)`")
                }
            }
            if let failure {
                problems.append(ImportProblem(line: rowLine, reason: "row \(position) of INSERT INTO `\(name)`: \(failure)"))
            } else {
                table.rows.append(SQLRow(line: rowLine, columns: names, values: values, position: position))
            }
            (t, l) = try next()
            if t == .punct(UInt8(ascii: ",")) { continue }
            if t == .delimiter || t == .end { return }
            // ON DUPLICATE KEY UPDATE ... : nothing more to read.
            return try skipStatement()
        }
    }

    /// One value expression of a row and the token after it. An expression
    /// that is not a literal is consumed up to the next top-level `,` or `)`
    /// and reported.
    mutating func readValue() throws(ImportError) -> (SQLValue, String?, Token) {
        var (t, l) = try next()
        var negative = false
        if t == .punct(UInt8(ascii: "-")) || t == .punct(UInt8(ascii: "+")) {
            negative = t == .punct(UInt8(ascii: "-"))
            (t, l) = try next()
        }
        var value: SQLValue?
        switch t {
        case .number(let n):
            value = .number(negative ? [UInt8(ascii: "-")] + n : n)
        case .string(var s):
            // Adjacent strings are concatenated.
            while true {
                let save = (pos, line)
                let (n, _) = try next()
                guard case .string(let more) = n else { (pos, line) = save; break }
                s += more
            }
            value = .string(s)
        case .binary(let b):
            value = .binary(b)
        case .word(let w):
            let k = w.text.lowercased()
            if k == "null" { value = .null } else if k == "true" { value = .number([UInt8(ascii: "1")]) } else if k == "false" {
                value = .number([UInt8(ascii: "0")])
            } else if k.hasPrefix("_") {
                // A character set introducer: _binary 'x', _utf8mb4 'x'.
                let (v, problem, term) = try readValue()
                return (v, problem, term)
            }
        default:
            break
        }
        if let value {
            let (term, _) = try next()
            if term == .punct(UInt8(ascii: ",")) || term == .punct(UInt8(ascii: ")")) {
                return (value, nil, term)
            }
            return try skipExpression(from: term, line: l, describing: "unexpected \(Self.describe(term)) after a value")
        }
        return try skipExpression(from: t, line: l, describing: "unsupported value \(Self.describe(t))")
    }

    /// Skips an expression to the next top-level `,` or `)`.
    mutating func skipExpression(from first: Token, line l: Int, describing reason: String) throws(ImportError)
        -> (SQLValue, String?, Token) {
        var depth = 0
        var t = first
        while true {
            switch t {
            case .punct(UInt8(ascii: "(")): depth += 1
            case .punct(UInt8(ascii: ")")):
                if depth == 0 { return (.null, reason, t) }
                depth -= 1
            case .punct(UInt8(ascii: ",")) where depth == 0:
                return (.null, reason, t)
            case .end, .delimiter:
                throw ImportError(line: l, "row ends before its closing parenthesis")
            default: break
            }
            (t, _) = try next()
        }
    }

    static func describe(_ t: Token) -> String {
        switch t {
        case .word(let w): return "`\(w.text)`"
        case .identifier(let s): return "`\(s)`"
        case .string: return "string"
        case .number(let n): return n.text
        case .binary: return "hex literal"
        case .punct(let p): return "`\(String(UnicodeScalar(p)))`"
        case .delimiter: return "end of statement"
        case .end: return "end of input"
        }
    }
}
