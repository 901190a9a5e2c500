import GreylagCore
import NIOCore

/// Why a policy connection was closed on input.
public struct PolicyProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case lineTooLong = "line too long"
        case requestTooLong = "request too long"
        case malformedLine = "malformed attribute line"
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
/// Lines are checked as they arrive but left in the buffer until the empty
/// line that ends the request; the request is then cut out whole (no copy)
/// and indexed.
public struct PolicyRequestDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = PolicyRequest

    /// Longest accepted line, newline excluded.
    public let maxLineLength: Int
    /// Longest accepted request, all lines included.
    public let maxRequestLength: Int

    /// Bytes of the current request already checked (complete lines).
    private var checked = 0
    private var hasAttributes = false

    public init(maxLineLength: Int = 8 * 1024, maxRequestLength: Int = 64 * 1024) {
        self.maxLineLength = maxLineLength
        self.maxRequestLength = maxRequestLength
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> PolicyRequest? {
        while true {
            let view = buffer.readableBytesView
            let lineStart = view.startIndex + checked
            guard let newline = view[lineStart...].firstIndex(of: UInt8(ascii: "\n")) else {
                let partial = view.endIndex - lineStart
                if partial > maxLineLength {
                    throw PolicyProtocolError(.lineTooLong, "more than \(maxLineLength) bytes without a newline")
                }
                if checked + partial > maxRequestLength {
                    throw PolicyProtocolError(.requestTooLong, "more than \(maxRequestLength) bytes")
                }
                return nil
            }
            let length = newline - lineStart
            if length > maxLineLength {
                throw PolicyProtocolError(.lineTooLong, "line of \(length) bytes, limit \(maxLineLength)")
            }
            if checked + length + 1 > maxRequestLength {
                throw PolicyProtocolError(.requestTooLong, "more than \(maxRequestLength) bytes")
            }
            if length == 0 {
                if !hasAttributes {
                    // A stray empty line between requests: nothing to answer.
                    buffer.moveReaderIndex(forwardBy: 1)
                    continue
                }
                return finish(&buffer, consuming: checked + 1)
            }
            try check(view[lineStart..<newline])
            checked += length + 1
            hasAttributes = true
        }
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> PolicyRequest? {
        if let request = try decode(buffer: &buffer) { return request }
        guard seenEOF else { return nil }
        // A last line without its newline still counts (readsocket clients).
        let rest = buffer.readableBytes - checked
        if rest > 0 {
            let view = buffer.readableBytesView
            try check(view[(view.startIndex + checked)...])
            hasAttributes = true
        }
        return hasAttributes ? finish(&buffer, consuming: buffer.readableBytes) : nil
    }

    private func check(_ line: ByteBufferView.SubSequence) throws {
        guard let eq = line.firstIndex(of: UInt8(ascii: "=")), eq != line.startIndex else {
            let shown = String(decoding: line.prefix(64), as: UTF8.self)
            throw PolicyProtocolError(.malformedLine, "no name=value in \"\(shown.logEscaped)\"")
        }
    }

    private mutating func finish(_ buffer: inout ByteBuffer, consuming count: Int) -> PolicyRequest {
        let slice = buffer.readSlice(length: count)!
        checked = 0
        hasAttributes = false
        return PolicyRequest(unchecked: slice)
    }
}
