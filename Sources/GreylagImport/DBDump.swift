/// Berkeley DB `db_dump` output: header lines `name=value` up to
/// `HEADER=END`, then key and value lines, each starting with a space, up to
/// `DATA=END` (more databases may follow). `format=bytevalue` (the default)
/// writes bytes as hex pairs, `format=print` (`db_dump -p`) writes printable
/// bytes as they are, `\\` for a backslash and `\xx` (hex) for the rest.
enum DBDump {
    struct Entry {
        /// Line of the key.
        var line: Int
        var key: [UInt8]
        var value: [UInt8]
    }

    static func read(_ bytes: [UInt8]) throws(ImportError) -> (entries: [Entry], problems: [ImportProblem]) {
        var entries: [Entry] = []
        var problems: [ImportProblem] = []
        var inData = false
        var printable = false
        var sawHeader = false
        var pendingKey: (line: Int, key: [UInt8]?)?
        var lineNo = 0
        var start = 0
        for i in 0...bytes.count where i == bytes.count || bytes[i] == 0x0A {
            lineNo += 1
            var line = bytes[start..<i]
            start = i + 1
            if line.last == 0x0D { line = line.dropLast() }
            if inData {
                if line.first == 0x20 {
                    let decoded = printable ? decodePrintable(line.dropFirst()) : decodeHex(line.dropFirst())
                    if let pk = pendingKey {
                        pendingKey = nil
                        if let key = pk.key, let decoded {
                            entries.append(Entry(line: pk.line, key: key, value: decoded))
                        } else {
                            let what = pk.key == nil ? "key" : "value"
                            problems.append(ImportProblem(line: pk.line, reason: "malformed \(printable ? "printable" : "hex") \(what)"))
                        }
                    } else {
                        pendingKey = (lineNo, decoded)
                    }
                } else if line.elementsEqual("DATA=END".utf8) {
                    if let pk = pendingKey {
                        problems.append(ImportProblem(line: pk.line, reason: "key without a value"))
                        pendingKey = nil
                    }
                    inData = false
                } else {
                    throw ImportError(line: lineNo, "expected a db_dump data line (starting with a space) or DATA=END")
                }
                continue
            }
            if line.isEmpty { continue }
            guard let eq = line.firstIndex(of: UInt8(ascii: "=")), eq != line.startIndex, line.first != 0x20 else {
                throw ImportError(line: lineNo, sawHeader
                                  ? "expected a db_dump header line (name=value)"
                                  : "not db_dump output: expected a header such as VERSION=3")
            }
            let name = Array(line[..<eq]).text
            let value = Array(line[(eq + 1)...]).text
            if !sawHeader && name != "VERSION" {
                throw ImportError(line: lineNo, "not db_dump output: expected a header such as VERSION=3")
            }
            sawHeader = true
            switch name {
            case "format": printable = value == "print"
            case "HEADER": if value == "END" { inData = true }
            default: break
            }
        }
        guard sawHeader else { throw ImportError(line: 1, "empty input: expected db_dump output") }
        if let pk = pendingKey { problems.append(ImportProblem(line: pk.line, reason: "key without a value")) }
        return (entries, problems)
    }

    static func decodeHex(_ s: ArraySlice<UInt8>) -> [UInt8]? {
        guard s.count % 2 == 0 else { return nil }
        return SQLDumpReader.hexBytes(s)
    }

    static func decodePrintable(_ s: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = s.startIndex
        while i < s.endIndex {
            let b = s[i]
            guard b == UInt8(ascii: "\\") else {
                out.append(b)
                i += 1
                continue
            }
            guard i + 1 < s.endIndex else { return nil }
            if s[i + 1] == UInt8(ascii: "\\") {
                out.append(b)
                i += 2
                continue
            }
            guard i + 2 < s.endIndex, let h = SQLDumpReader.hexValue(s[i + 1]), let l = SQLDumpReader.hexValue(s[i + 2]) else {
                return nil
            }
            out.append(h << 4 | l)
            i += 3
        }
        return out
    }
}
