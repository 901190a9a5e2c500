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
public struct PolicyRequestDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = PolicyRequest

    /// Longest accepted line, newline excluded.
    public let maxLineLength: Int
    /// Longest accepted request, all lines included.
    public let maxRequestLength: Int

    private var request = PolicyRequest()
    private var requestBytes = 0

    public init(maxLineLength: Int = 8 * 1024, maxRequestLength: Int = 64 * 1024) {
        self.maxLineLength = maxLineLength
        self.maxRequestLength = maxRequestLength
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> PolicyRequest? {
        while true {
            let view = buffer.readableBytesView
            guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
                if view.count > maxLineLength {
                    throw PolicyProtocolError(.lineTooLong, "more than \(maxLineLength) bytes without a newline")
                }
                if requestBytes + view.count > maxRequestLength {
                    throw PolicyProtocolError(.requestTooLong, "more than \(maxRequestLength) bytes")
                }
                return nil
            }
            let length = newline - view.startIndex
            if length > maxLineLength {
                throw PolicyProtocolError(.lineTooLong, "line of \(length) bytes, limit \(maxLineLength)")
            }
            requestBytes += length + 1
            if requestBytes > maxRequestLength {
                throw PolicyProtocolError(.requestTooLong, "more than \(maxRequestLength) bytes")
            }
            let line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            if length == 0 {
                if request.isEmpty {
                    // A stray empty line between requests: nothing to answer.
                    requestBytes = 0
                    continue
                }
                return finish()
            }
            try addLine(line)
        }
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> PolicyRequest? {
        if let request = try decode(buffer: &buffer) { return request }
        guard seenEOF else { return nil }
        // A last line without its newline still counts (readsocket clients).
        if buffer.readableBytes > 0 {
            let line = buffer.readSlice(length: buffer.readableBytes)!
            try addLine(line)
        }
        return request.isEmpty ? nil : finish()
    }

    private mutating func addLine(_ line: ByteBuffer) throws {
        let bytes = line.readableBytesView
        guard let eq = bytes.firstIndex(of: UInt8(ascii: "=")), eq != bytes.startIndex else {
            let shown = String(decoding: bytes.prefix(64), as: UTF8.self)
            throw PolicyProtocolError(.malformedLine, "no name=value in \"\(shown.logEscaped)\"")
        }
        var value = bytes[(eq + 1)...]
        if value.last == UInt8(ascii: "\r") { value = value.dropLast() }  // tolerate CRLF clients
        let name = String(decoding: bytes[bytes.startIndex..<eq], as: UTF8.self)
        request.append(name, String(decoding: value, as: UTF8.self))
    }

    private mutating func finish() -> PolicyRequest {
        let finished = request
        request = PolicyRequest()
        requestBytes = 0
        return finished
    }
}
