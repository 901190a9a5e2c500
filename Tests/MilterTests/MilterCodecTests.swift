import GreylagCore
import Milter
import NIOCore
import NIOTestUtils
import Testing

/// Builds one packet: length, command letter, data.
func packet(_ command: Character, _ data: [UInt8] = []) -> [UInt8] {
    let length = UInt32(data.count + 1)
    return [UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF),
            command.asciiValue!] + data
}

/// NUL-terminated strings.
func cstrings(_ s: String...) -> [UInt8] { s.flatMap { Array($0.utf8) + [0] } }

/// Captured from Debian's Postfix 3.7 (milter_protocol = 6 and 2).
let postfixV6Negotiation: [UInt8] = [0x00, 0x00, 0x00, 0x0D, 0x4F, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x01, 0xFF,
                                     0x00, 0x1F, 0xFF, 0xFF]
let postfixV2Negotiation: [UInt8] = [0x00, 0x00, 0x00, 0x0D, 0x4F, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x01, 0xFF,
                                     0x00, 0x00, 0x00, 0x7F]

@Suite struct MilterCodecTests {
    @Test func decodesASessionWholeByteByByteAndInRandomSplits() throws {
        let connectMacros = packet("D", [UInt8(ascii: "C")] + cstrings("j", "mx.example.net", "{daemon_addr}", "192.0.2.25"))
        let connect = packet("C", cstrings("mail.example.org") + [UInt8(ascii: "4"), 0x30, 0x39] + cstrings("198.51.100.7"))
        let connect6 = packet("C", cstrings("[2001:db8::7]") + [UInt8(ascii: "6"), 0, 25] + cstrings("IPv6:2001:db8::7"))
        let unix = packet("C", cstrings("localhost") + [UInt8(ascii: "U")])
        let helo = packet("H", cstrings("mail.example.org"))
        let mail = packet("M", cstrings("<a@example.org>", "SIZE=100", "BODY=8BITMIME"))
        let rcpt = packet("R", cstrings("<b@example.net>"))
        let header = packet("L", cstrings("Subject", "hi"))
        let input = postfixV6Negotiation + connectMacros + connect + connect6 + unix + helo + mail + rcpt
            + packet("T") + header + packet("N") + packet("B", Array("body".utf8)) + packet("E") + packet("A")
            + packet("U", cstrings("XYZZY")) + packet("K") + packet("Q")
        let expected: [MilterCommand] = [
            .optionNegotiation(version: 6, actions: 0x1FF, protocolFlags: 0x1F_FFFF),
            .macros(stage: UInt8(ascii: "C"), [MilterMacro("j", "mx.example.net"), MilterMacro("daemon_addr", "192.0.2.25")]),
            .connect(host: "mail.example.org", family: UInt8(ascii: "4"), port: 12345, address: "198.51.100.7"),
            .connect(host: "[2001:db8::7]", family: UInt8(ascii: "6"), port: 25, address: "IPv6:2001:db8::7"),
            .connect(host: "localhost", family: UInt8(ascii: "U"), port: 0, address: ""),
            .helo("mail.example.org"),
            .mail(["<a@example.org>", "SIZE=100", "BODY=8BITMIME"]),
            .rcpt(["<b@example.net>"]),
            .data, .header(name: "Subject", value: "hi"), .endOfHeaders, .body, .endOfMessage, .abort,
            .unknown("XYZZY"), .quitNewConnection, .quit,
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(ByteBuffer(bytes: input), expected),
                               (ByteBuffer(bytes: postfixV2Negotiation),
                                [.optionNegotiation(version: 2, actions: 0x1FF, protocolFlags: 0x7F)])],
            decoderFactory: { MilterDecoder() })
    }

    /// A NUL inside the HELO name or the connect address is kept in the
    /// value (the session refuses it), not cut off into another name.
    @Test func nulInsideTheLastFieldStaysInTheValue() throws {
        var decoder = MilterDecoder()
        var buffer = ByteBuffer(bytes: packet("H", cstrings("mail.example.org", "evil"))
                                + packet("H", Array("a\u{0}b".utf8))
                                + packet("C", cstrings("h") + [UInt8(ascii: "4"), 0, 25] + cstrings("192.0.2.1", "x")))
        #expect(try decoder.decode(buffer: &buffer) == .helo("mail.example.org\u{0}evil"))
        #expect(try decoder.decode(buffer: &buffer) == .helo("a\u{0}b"))
        #expect(try decoder.decode(buffer: &buffer)
                == .connect(host: "h", family: UInt8(ascii: "4"), port: 25, address: "192.0.2.1\u{0}x"))
    }

    @Test(arguments: [
        ([0, 0, 0, 0] as [UInt8], "bad packet length"),                       // zero length
        ([0x7F, 0xFF, 0xFF, 0xFF, 0x4F] as [UInt8], "bad packet length"),     // 2 GiB
        (packet("Z"), "unknown command: command 'Z'"),
        (packet("O", [0, 0, 0, 6]), "malformed packet: option negotiation shorter than 12 bytes"),
        (packet("H", Array("no-nul".utf8)), "malformed packet: HELO name is not NUL-terminated"),
        (packet("C", cstrings("host")), "malformed packet: connect without an address family"),
    ])
    func badInputIsAnError(bytes: [UInt8], message: String) {
        var decoder = MilterDecoder()
        var buffer = ByteBuffer(bytes: bytes)
        #expect {
            _ = try decoder.decode(buffer: &buffer)
        } throws: { error in
            (error as? MilterProtocolError).map { "\($0)".hasPrefix(message) } ?? false
        }
    }

    @Test func encodesReplies() throws {
        func bytes(_ r: MilterResponse) throws -> [UInt8] {
            var out = ByteBuffer()
            r.write(into: &out)
            return Array(out.readableBytesView)
        }
        #expect(try bytes(.continue) == [0, 0, 0, 1, UInt8(ascii: "c")])
        #expect(try bytes(.negotiate(version: 6, actions: 1, protocolFlags: 0x0F_73F0))
                == [0, 0, 0, 13, UInt8(ascii: "O"), 0, 0, 0, 6, 0, 0, 0, 1, 0, 0x0F, 0x73, 0xF0])
        #expect(try bytes(.replyCode("451 4.7.1 Wait")) == packet("y", cstrings("451 4.7.1 Wait")))
        #expect(try bytes(.addHeader(name: "X-Greylist", value: "v")) == packet("h", cstrings("X-Greylist", "v")))
    }
}
