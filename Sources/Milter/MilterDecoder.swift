import NIOCore

/// Cuts the byte stream into milter packets and parses each into a
/// `MilterCommand`. A length of 0 or above `maxPacketLength`, an unknown
/// command letter or a packet that does not parse is an error: the
/// connection closes.
public struct MilterDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = MilterCommand

    /// Largest accepted packet (command byte and data). Body chunks are at
    /// most 65,535 bytes; greylag asks not to be sent bodies at all.
    public let maxPacketLength: Int

    public init(maxPacketLength: Int = 65_536 + 1024) {
        self.maxPacketLength = maxPacketLength
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> MilterCommand? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard length >= 1, Int(length) <= maxPacketLength else {
            throw MilterProtocolError(.badLength, "packet of \(length) bytes (limit \(maxPacketLength))")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        let command = buffer.readInteger(as: UInt8.self)!
        var data = buffer.readSlice(length: Int(length) - 1)!
        return try Self.parse(command: command, data: &data)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> MilterCommand? {
        try decode(buffer: &buffer)
    }

    /// Parses the data of one packet.
    static func parse(command: UInt8, data: inout ByteBuffer) throws -> MilterCommand {
        switch command {
        case UInt8(ascii: "O"):
            guard let version = data.readInteger(as: UInt32.self), let actions = data.readInteger(as: UInt32.self),
                  let flags = data.readInteger(as: UInt32.self) else {
                throw MilterProtocolError(.malformed, "option negotiation shorter than 12 bytes")
            }
            return .optionNegotiation(version: version, actions: actions, protocolFlags: flags)
        case UInt8(ascii: "D"):
            guard let stage = data.readInteger(as: UInt8.self) else {
                throw MilterProtocolError(.malformed, "macro packet without a stage")
            }
            let strings = try Self.strings(&data, what: "macros")
            var macros: [MilterMacro] = []
            var i = 0
            while i + 1 < strings.count {
                macros.append(MilterMacro(Self.bare(strings[i]), strings[i + 1]))
                i += 2
            }
            return .macros(stage: stage, macros)
        case UInt8(ascii: "C"):
            let host = try Self.string(&data, what: "connect host")
            guard let family = data.readInteger(as: UInt8.self) else {
                throw MilterProtocolError(.malformed, "connect without an address family")
            }
            var port: UInt16 = 0
            var address = ""
            if family != UInt8(ascii: "U") {
                guard let p = data.readInteger(as: UInt16.self) else {
                    throw MilterProtocolError(.malformed, "connect without a port")
                }
                port = p
                address = try Self.lastString(&data, what: "connect address")
            }
            return .connect(host: host, family: family, port: port, address: address)
        case UInt8(ascii: "H"): return .helo(try Self.lastString(&data, what: "HELO name"))
        case UInt8(ascii: "M"): return .mail(try Self.strings(&data, what: "MAIL arguments"))
        case UInt8(ascii: "R"): return .rcpt(try Self.strings(&data, what: "RCPT arguments"))
        case UInt8(ascii: "T"): return .data
        case UInt8(ascii: "L"):
            let strings = try Self.strings(&data, what: "header")
            guard strings.count >= 1 else { throw MilterProtocolError(.malformed, "empty header packet") }
            return .header(name: strings[0], value: strings.count > 1 ? strings[1] : "")
        case UInt8(ascii: "N"): return .endOfHeaders
        case UInt8(ascii: "B"): return .body
        case UInt8(ascii: "E"): return .endOfMessage
        case UInt8(ascii: "A"): return .abort
        case UInt8(ascii: "Q"): return .quit
        case UInt8(ascii: "K"): return .quitNewConnection
        case UInt8(ascii: "U"): return .unknown((try? Self.string(&data, what: "unknown command")) ?? "")
        default:
            let shown = command >= 0x20 && command < 0x7F ? "'\(Character(UnicodeScalar(command)))'" : "0x\(String(command, radix: 16))"
            throw MilterProtocolError(.unknownCommand, "command \(shown)")
        }
    }

    /// One NUL-terminated string.
    static func string(_ data: inout ByteBuffer, what: String) throws -> String {
        guard let nul = data.readableBytesView.firstIndex(of: 0) else {
            throw MilterProtocolError(.malformed, "\(what) is not NUL-terminated")
        }
        let s = data.readString(length: nul - data.readerIndex) ?? ""
        data.moveReaderIndex(forwardBy: 1)
        return s
    }

    /// The last field of a packet: everything up to its final NUL. A NUL
    /// before that one (or bytes after it) stay in the value, which the
    /// session then refuses, instead of being cut off into a different name.
    static func lastString(_ data: inout ByteBuffer, what: String) throws -> String {
        let view = data.readableBytesView
        guard view.contains(0) else { throw MilterProtocolError(.malformed, "\(what) is not NUL-terminated") }
        let length = view.last == 0 ? view.count - 1 : view.count
        let s = data.readString(length: length) ?? ""
        data.moveReaderIndex(to: data.writerIndex)
        return s
    }

    /// NUL-terminated strings up to the end of the data.
    static func strings(_ data: inout ByteBuffer, what: String) throws -> [String] {
        var out: [String] = []
        while data.readableBytes > 0 { out.append(try string(&data, what: what)) }
        return out
    }

    /// A macro name without its braces.
    static func bare(_ name: String) -> String {
        name.hasPrefix("{") && name.hasSuffix("}") && name.count >= 2 ? String(name.dropFirst().dropLast()) : name
    }
}

extension MilterResponse {
    /// Appends the reply's packet (length, letter, data) to `out`.
    public func write(into out: inout ByteBuffer) {
        let start = out.writerIndex
        out.writeInteger(UInt32(0))  // length, filled in below
        switch self {
        case .negotiate(let version, let actions, let flags):
            out.writeInteger(UInt8(ascii: "O"))
            out.writeInteger(version)
            out.writeInteger(actions)
            out.writeInteger(flags)
        case .continue: out.writeInteger(UInt8(ascii: "c"))
        case .accept: out.writeInteger(UInt8(ascii: "a"))
        case .reject: out.writeInteger(UInt8(ascii: "r"))
        case .tempfail: out.writeInteger(UInt8(ascii: "t"))
        case .replyCode(let text):
            out.writeInteger(UInt8(ascii: "y"))
            out.writeString(text)
            out.writeInteger(UInt8(0))
        case .addHeader(let name, let value):
            out.writeInteger(UInt8(ascii: "h"))
            out.writeString(name)
            out.writeInteger(UInt8(0))
            out.writeString(value)
            out.writeInteger(UInt8(0))
        }
        out.setInteger(UInt32(out.writerIndex - start - 4), at: start)
    }
}
