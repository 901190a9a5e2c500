// Postfix SMTP access policy delegation, request side.
//
// Grammar (Postfix SMTPD_POLICY_README):
//   request   = *( attribute LF ) LF
//   attribute = name "=" value          ; value may be empty, may contain "="
// Lines end with LF; a CR before the LF is tolerated and dropped. Control
// bytes in a line are refused. One connection carries many requests. Exim's
// readsocket sends one request and half-closes instead of sending the final
// empty line; such a request is taken at end of input.

import NIOCore

/// One policy request: its attributes in the order received.
///
/// The request keeps its bytes and an index of where each name and value
/// lies; a value becomes a `String` only when asked for. A request has about
/// thirty attributes and a decision reads a handful. When a name repeats,
/// the last value counts.
public struct PolicyRequest: Sendable, Hashable, CustomStringConvertible {
    /// Where one attribute lies in the request's bytes.
    struct Entry {
        /// Offsets of the name, of the "=" and of the value's end.
        var name, equals, end: Int32
    }

    private var bytes: ByteBuffer
    private var index: [Entry]

    public init(attributes: [String: String] = [:]) {
        var text = ""
        for (name, value) in attributes.sorted(by: { $0.key < $1.key }) { text += "\(name)=\(value)\n" }
        self.init(unchecked: ByteBuffer(string: text))
    }

    /// A request the decoder has checked and indexed.
    init(indexed buffer: ByteBuffer, index: [Entry]) {
        bytes = buffer
        self.index = index
    }

    /// Indexes `buffer`, which holds `name=value` lines (each with its LF, the
    /// last may lack it) that the decoder has already checked.
    init(unchecked buffer: ByteBuffer) {
        bytes = buffer
        index = []
        index.reserveCapacity(32)
        let view = buffer.readableBytesView
        let base = view.startIndex
        var lineStart = base
        while lineStart < view.endIndex {
            let end = view[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? view.endIndex
            if end > lineStart, let eq = view[lineStart..<end].firstIndex(of: UInt8(ascii: "=")) {
                var valueEnd = end
                if valueEnd > eq && view[valueEnd - 1] == UInt8(ascii: "\r") { valueEnd -= 1 }
                index.append(Entry(name: Int32(lineStart - base), equals: Int32(eq - base), end: Int32(valueEnd - base)))
            }
            lineStart = end + 1
        }
    }

    /// The value of an attribute, or "" when absent.
    public subscript(_ name: String) -> String {
        withValueBytes(name) { String(decoding: $0, as: UTF8.self) }
    }

    /// Calls `body` with the bytes of an attribute's value (empty when
    /// absent), without making a `String` of it.
    public func withValueBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        var name = name
        return name.withUTF8 { wanted in
            bytes.readableBytesView.withContiguousStorageIfAvailable { raw -> R in
                for entry in index.reversed() {
                    let length = Int(entry.equals - entry.name)
                    guard length == wanted.count else { continue }
                    if memcmp(raw.baseAddress! + Int(entry.name), wanted.baseAddress!, length) == 0 {
                        return body(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: raw[Int(entry.equals + 1)..<Int(entry.end)])))
                    }
                }
                return body(UnsafeRawBufferPointer(start: nil, count: 0))
            } ?? body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
    }

    /// The names that start with `prefix`, each once, in the order received.
    /// Compares bytes only: cheap enough for every request.
    public func names(withPrefix prefix: String) -> [String] {
        var prefix = prefix
        return prefix.withUTF8 { wanted in
            bytes.readableBytesView.withContiguousStorageIfAvailable { raw -> [String] in
                var out: [String] = []
                for entry in index where Int(entry.equals - entry.name) >= wanted.count {
                    if let w = wanted.baseAddress, memcmp(raw.baseAddress! + Int(entry.name), w, wanted.count) != 0 {
                        continue
                    }
                    let name = String(decoding: raw[Int(entry.name)..<Int(entry.equals)], as: UTF8.self)
                    if !out.contains(name) { out.append(name) }
                }
                return out
            } ?? []
        }
    }

    /// The attributes in the order received.
    public var attributes: [(name: String, value: String)] {
        let view = bytes.readableBytesView
        let base = view.startIndex
        return index.map { entry in
            (String(decoding: view[(base + Int(entry.name))..<(base + Int(entry.equals))], as: UTF8.self),
             String(decoding: view[(base + Int(entry.equals) + 1)..<(base + Int(entry.end))], as: UTF8.self))
        }
    }

    /// The attributes as a dictionary (last value of a repeated name).
    public var dictionary: [String: String] {
        Dictionary(attributes.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
    }

    var isEmpty: Bool { index.isEmpty }

    public static func == (lhs: PolicyRequest, rhs: PolicyRequest) -> Bool {
        lhs.dictionary == rhs.dictionary
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(dictionary)
    }

    public var description: String {
        attributes.map { "\($0.name)=\($0.value)" }.joined(separator: "\n")
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
