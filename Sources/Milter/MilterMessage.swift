import NIOCore

// The milter protocol, as Sendmail's libmilter and Postfix speak it
// (see PROTOCOLS.md §2):
//
//   packet   = length:u32be command:u8 data[length - 1]
//   strings  are NUL-terminated
//
// MTA -> filter commands (ASCII letters):
//   'O' version:u32 actions:u32 protocol:u32      option negotiation
//   'D' stage:u8 (name NUL value NUL)*             macros for the next stage
//   'C' host NUL family:u8 [port:u16 address NUL]  connect (family 4 6 L U)
//   'H' helo NUL                                   HELO/EHLO
//   'M' sender NUL (esmtp-arg NUL)*                MAIL FROM
//   'R' recipient NUL (esmtp-arg NUL)*             RCPT TO
//   'T'                                            DATA
//   'L' name NUL value NUL                         one header
//   'N'                                            end of headers
//   'B' bytes                                      a body chunk
//   'E'                                            end of message
//   'A'                                            abort the message
//   'Q'                                            quit
//   'K'                                            quit, a new connection follows
//   'U' command NUL                                unknown SMTP command
//
// filter -> MTA replies:
//   'O' version actions protocol, 'c' continue, 'a' accept, 'r' reject,
//   't' tempfail, 'y' code-and-text NUL, 'h' name NUL value NUL (add header)

/// One command from the MTA, parsed.
public enum MilterCommand: Sendable, Hashable {
    case optionNegotiation(version: UInt32, actions: UInt32, protocolFlags: UInt32)
    case macros(stage: UInt8, [MilterMacro])
    case connect(host: String, family: UInt8, port: UInt16, address: String)
    case helo(String)
    case mail([String])
    case rcpt([String])
    case data
    case header(name: String, value: String)
    case endOfHeaders
    case body
    case endOfMessage
    case abort
    case quit
    case quitNewConnection
    case unknown(String)

    /// The command letter, for logs.
    public var letter: Character {
        switch self {
        case .optionNegotiation: return "O"
        case .macros: return "D"
        case .connect: return "C"
        case .helo: return "H"
        case .mail: return "M"
        case .rcpt: return "R"
        case .data: return "T"
        case .header: return "L"
        case .endOfHeaders: return "N"
        case .body: return "B"
        case .endOfMessage: return "E"
        case .abort: return "A"
        case .quit: return "Q"
        case .quitNewConnection: return "K"
        case .unknown: return "U"
        }
    }
}

/// A macro name (without braces: `{auth_authen}` becomes `auth_authen`) and value.
public struct MilterMacro: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// One reply to the MTA.
public enum MilterResponse: Sendable, Hashable {
    case negotiate(version: UInt32, actions: UInt32, protocolFlags: UInt32)
    case `continue`
    case accept
    case reject
    case tempfail
    /// `451 4.7.1 text`: an SMTP reply for this stage (one recipient at RCPT).
    case replyCode(String)
    case addHeader(name: String, value: String)
}

/// Why a milter connection was closed on input.
public struct MilterProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case badLength = "bad packet length"
        case unknownCommand = "unknown command"
        case malformed = "malformed packet"
    }

    public var code: Code
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(code.rawValue): \(detail)" }
}

/// Protocol constants of libmilter's `mfapi.h`/`mfdef.h`.
public enum MilterFlags {
    /// Action: the filter may add headers.
    public static let addHeaders: UInt32 = 0x01
    public static let noConnect: UInt32 = 0x1
    public static let noHelo: UInt32 = 0x2
    public static let noMail: UInt32 = 0x4
    public static let noRcpt: UInt32 = 0x8
    public static let noBody: UInt32 = 0x10
    public static let noHeaders: UInt32 = 0x20
    public static let noEndOfHeaders: UInt32 = 0x40
    public static let noReplyHeader: UInt32 = 0x80
    public static let noUnknown: UInt32 = 0x100
    public static let noData: UInt32 = 0x200
    public static let noReplyConnect: UInt32 = 0x1000
    public static let noReplyHelo: UInt32 = 0x2000
    public static let noReplyMail: UInt32 = 0x4000
    public static let noReplyRcpt: UInt32 = 0x8000
    public static let noReplyData: UInt32 = 0x10000
    public static let noReplyUnknown: UInt32 = 0x20000
    public static let noReplyEndOfHeaders: UInt32 = 0x40000
    public static let noReplyBody: UInt32 = 0x80000
}
