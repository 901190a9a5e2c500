import GreylagCore
import NIOCore

/// Why a policy connection was closed on input.
public struct PolicyProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case lineTooLong = "line too long"
        case requestTooLong = "request too long"
        case malformedLine = "malformed attribute line"
        case controlByte = "control byte in attribute"
    }

    public var code: Code
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(code.rawValue): \(detail)" }
}

/// Splits a byte stream into policy requests, enforcing the size limits.
///
/// Lines are checked and indexed as they arrive but left in the buffer
/// until the empty line that ends the request; the request is then cut out
/// whole (no copy) with the index built on the way.
public struct PolicyRequestDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = PolicyRequest

    /// Longest accepted line, newline excluded.
    public let maxLineLength: Int
    /// Longest accepted request, all lines included.
    public let maxRequestLength: Int

    /// Bytes of the current request already checked (complete lines).
    private var checked = 0
    /// The checked lines: offsets of name, "=" and value end from the
    /// request's first byte.
    private var index: [PolicyRequest.Entry] = []

    public init(maxLineLength: Int = 8 * 1024, maxRequestLength: Int = 64 * 1024) {
        self.maxLineLength = maxLineLength
        self.maxRequestLength = maxRequestLength
    }

    private enum Step {
        case needMore
        /// An empty line (LF or CR LF) of this many bytes between requests.
        case strayEmptyLine(Int)
        case complete(length: Int)
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> PolicyRequest? {
        while true {
            switch try buffer.withUnsafeReadableBytes({ try scan($0) }) {
            case .needMore:
                return nil
            case .strayEmptyLine(let count):
                // An empty line between requests: nothing to answer.
                buffer.moveReaderIndex(forwardBy: count)
            case .complete(let length):
                return finish(&buffer, consuming: length)
            }
        }
    }

    /// Checks and indexes the complete lines after `checked`.
    private mutating func scan(_ raw: UnsafeRawBufferPointer) throws -> Step {
        while true {
            let lineStart = checked
            let partial = raw.count - lineStart
            guard partial > 0, let newline = Self.find(UInt8(ascii: "\n"), in: raw, from: lineStart, to: raw.count) else {
                if partial > maxLineLength {
                    throw PolicyProtocolError(.lineTooLong, "more than \(maxLineLength) bytes without a newline")
                }
                if checked + partial > maxRequestLength {
                    throw PolicyProtocolError(.requestTooLong, "more than \(maxRequestLength) bytes")
                }
                return .needMore
            }
            let length = newline - lineStart
            if length > maxLineLength {
                throw PolicyProtocolError(.lineTooLong, "line of \(length) bytes, limit \(maxLineLength)")
            }
            if checked + length + 1 > maxRequestLength {
                throw PolicyProtocolError(.requestTooLong, "more than \(maxRequestLength) bytes")
            }
            // CR LF clients: a line of just CR is the empty line too.
            if length == 0 || (length == 1 && raw[lineStart] == UInt8(ascii: "\r")) {
                return index.isEmpty ? .strayEmptyLine(length + 1) : .complete(length: checked + length + 1)
            }
            try add(raw, line: lineStart, end: newline)
            checked = newline + 1
        }
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> PolicyRequest? {
        if let request = try decode(buffer: &buffer) { return request }
        guard seenEOF else { return nil }
        // A last line without its newline still counts (readsocket clients).
        if buffer.readableBytes > checked {
            try buffer.withUnsafeReadableBytes { try add($0, line: checked, end: $0.count) }
        }
        return index.isEmpty ? nil : finish(&buffer, consuming: buffer.readableBytes)
    }

    /// Indexes the line `raw[line..<end]`, which must be `name=value`.
    private mutating func add(_ raw: UnsafeRawBufferPointer, line: Int, end: Int) throws {
        guard let equals = Self.find(UInt8(ascii: "="), in: raw, from: line, to: end), equals != line else {
            let shown = String(decoding: raw[line..<min(end, line + 64)], as: UTF8.self)
            throw PolicyProtocolError(.malformedLine, "no name=value in \"\(shown.logEscaped)\"")
        }
        // One CR before the LF is part of the line end (CR LF clients).
        var valueEnd = end
        if valueEnd > equals && raw[valueEnd - 1] == UInt8(ascii: "\r") { valueEnd -= 1 }
        // A control byte (a NUL above all) would make the stored key, the
        // logged key and the dashboard's key differ: refuse the request.
        if let bad = (line..<valueEnd).first(where: { raw[$0] < 0x20 || raw[$0] == 0x7F }) {
            let name = String(decoding: raw[line..<min(equals, line + 64)], as: UTF8.self)
            let part = bad < equals ? "name" : "value"
            throw PolicyProtocolError(.controlByte, "byte 0x\(String(raw[bad], radix: 16)) in the \(part) of attribute \"\(name.logEscaped)\"")
        }
        index.append(PolicyRequest.Entry(name: Int32(line), equals: Int32(equals), end: Int32(valueEnd)))
    }

    /// The offset of the first `byte` in `raw[from..<to]`.
    private static func find(_ byte: UInt8, in raw: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        guard to > from, let base = raw.baseAddress,
              let hit = memchr(base + from, Int32(byte), to - from) else { return nil }
        return base.distance(to: UnsafeRawPointer(hit))
    }

    private mutating func finish(_ buffer: inout ByteBuffer, consuming count: Int) -> PolicyRequest {
        let slice = buffer.readSlice(length: count)!
        let request = PolicyRequest(indexed: slice, index: index)
        checked = 0
        index = []
        index.reserveCapacity(32)
        return request
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
