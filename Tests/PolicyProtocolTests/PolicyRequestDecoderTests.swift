import Foundation
import NIOCore
import NIOEmbedded
import NIOTestUtils
import PolicyProtocol
import Testing

@Suite struct PolicyRequestDecoderTests {
    static let postfixRequest = """
        request=smtpd_access_policy
        protocol_state=RCPT
        protocol_name=ESMTP
        client_address=192.0.2.7
        client_name=mail.example.org
        helo_name=mail.example.org
        sender=alice@example.org
        recipient=bob@example.net
        instance=123.456.7
        queue_id=
        policy_context=a=b=c


        """

    static let expected = PolicyRequest(attributes: [
        "request": "smtpd_access_policy", "protocol_state": "RCPT", "protocol_name": "ESMTP",
        "client_address": "192.0.2.7", "client_name": "mail.example.org", "helo_name": "mail.example.org",
        "sender": "alice@example.org", "recipient": "bob@example.net", "instance": "123.456.7",
        "queue_id": "", "policy_context": "a=b=c",
    ])

    @Test func decodesWholeByteByByteAndInRandomSplits() throws {
        var attributes = Self.expected.dictionary
        attributes["recipient"] = "carol@example.net"
        let second = PolicyRequest(attributes: attributes)
        let twoRequests = Self.postfixRequest + Self.postfixRequest.replacingOccurrences(of: "bob@", with: "carol@")
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [
                (ByteBuffer(string: Self.postfixRequest), [Self.expected]),
                (ByteBuffer(string: twoRequests), [Self.expected, second]),
                (ByteBuffer(string: "\n\na=1\n\n"), [PolicyRequest(attributes: ["a": "1"])]),
            ],
            decoderFactory: { PolicyRequestDecoder() })
    }

    @Test func requestAtEndOfInputWithoutBlankLineIsAnswered() throws {
        // Exim's readsocket: attributes, then a half-close instead of the empty line.
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(PolicyRequestDecoder()))
        try channel.writeInbound(ByteBuffer(string: "protocol_state=RCPT\nclient_address=192.0.2.1\nrecipient=x@y"))
        #expect(try channel.readInbound(as: PolicyRequest.self) == nil)
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        let request = try channel.readInbound(as: PolicyRequest.self)
        #expect(request == PolicyRequest(attributes: ["protocol_state": "RCPT", "client_address": "192.0.2.1",
                                                      "recipient": "x@y"]))
        _ = try? channel.finish()
    }

    @Test func emptyInputAtEndYieldsNothing() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(PolicyRequestDecoder()))
        try channel.writeInbound(ByteBuffer(string: "a=1\n\n"))
        #expect(try channel.readInbound(as: PolicyRequest.self) != nil)
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(try channel.readInbound(as: PolicyRequest.self) == nil)
        _ = try? channel.finish()
    }

    func decodeError(_ input: String, _ decoder: PolicyRequestDecoder = PolicyRequestDecoder()) -> PolicyProtocolError? {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(decoder))
        defer { _ = try? channel.finish() }
        do {
            try channel.writeInbound(ByteBuffer(string: input))
            return nil
        } catch {
            return error as? PolicyProtocolError
        }
    }

    @Test func lineOverLimitIsRefused() {
        #expect(decodeError("a=" + String(repeating: "x", count: 8190) + "\n\n") == nil)  // 8192 bytes: allowed
        #expect(decodeError("a=" + String(repeating: "x", count: 8191) + "\n\n")?.code == .lineTooLong)
        // Without a newline at all, the limit applies as the bytes arrive.
        #expect(decodeError(String(repeating: "x", count: 9000))?.code == .lineTooLong)
    }

    @Test func requestOverLimitIsRefused() {
        let line = "a=" + String(repeating: "x", count: 1000) + "\n"
        #expect(decodeError(String(repeating: line, count: 65) + "\n") == nil)
        #expect(decodeError(String(repeating: line, count: 66) + "\n")?.code == .requestTooLong)
    }

    @Test func limitsAreConfigurable() {
        let small = PolicyRequestDecoder(maxLineLength: 10, maxRequestLength: 30)
        #expect(decodeError("abc=123456789\n\n", small)?.code == .lineTooLong)
        #expect(decodeError("a=1\nb=2\nc=3\nd=4\ne=5\nf=6\ng=7\nh=8\n\n", small)?.code == .requestTooLong)
    }

    @Test(arguments: ["garbage\n\n", "=value\n\n", "\u{0}\u{1}\u{2}\n"])
    func malformedLinesAreRefused(input: String) {
        #expect(decodeError(input)?.code == .malformedLine)
    }

    @Test func repeatedNamesKeepTheLastValueAndOrder() throws {
        var buffer = ByteBuffer(string: "b=1\na=2\nb=3\nempty=\n\n")
        var decoder = PolicyRequestDecoder()
        let request = try #require(try decoder.decode(buffer: &buffer))
        #expect(request["b"] == "3")
        #expect(request["empty"] == "")
        #expect(request["missing"] == "")
        #expect(request.attributes.map(\.name) == ["b", "a", "b", "empty"])
    }

    /// Requests back to back in one read, with stray empty lines between
    /// them: each gets its own attributes, none of the one before.
    @Test func pipelinedRequestsAreIndexedEachOnItsOwn() throws {
        var buffer = ByteBuffer(string: "\na=1\nb=x=y\n\n\n\nc=3\na=4\n\nd=")
        var decoder = PolicyRequestDecoder()
        let first = try #require(try decoder.decode(buffer: &buffer))
        #expect(first.attributes.map { "\($0.name)=\($0.value)" } == ["a=1", "b=x=y"])
        let second = try #require(try decoder.decode(buffer: &buffer))
        #expect(second.attributes.map { "\($0.name)=\($0.value)" } == ["c=3", "a=4"])
        #expect(second["a"] == "4" && second["b"] == "")
        #expect(try decoder.decode(buffer: &buffer) == nil)
        let last = try #require(try decoder.decodeLast(buffer: &buffer, seenEOF: true))
        #expect(last.attributes.map { "\($0.name)=\($0.value)" } == ["d="])
        #expect(buffer.readableBytes == 0)
    }

    @Test func crlfClientsAreTolerated() throws {
        var buffer = ByteBuffer(string: "a=1\r\n")
        var decoder = PolicyRequestDecoder()
        #expect(try decoder.decode(buffer: &buffer) == nil)
        buffer.writeString("\n")
        #expect(try decoder.decode(buffer: &buffer) == PolicyRequest(attributes: ["a": "1"]))
        #expect(buffer.readableBytes == 0)
    }
}

extension PolicyRequestDecoderTests {
    /// A whole CR LF request, ending in a CR LF empty line, is answered;
    /// stray CR LF empty lines between requests are skipped.
    @Test func crlfRequestsAreDecoded() throws {
        var buffer = ByteBuffer(string: "\r\nsender=a@example.org\r\nqueue_id=\r\n\r\nb=2\r\n\r\n")
        var decoder = PolicyRequestDecoder()
        let first = try #require(try decoder.decode(buffer: &buffer))
        #expect(first.attributes.map { "\($0.name)=\($0.value)" } == ["sender=a@example.org", "queue_id="])
        let second = try #require(try decoder.decode(buffer: &buffer))
        #expect(second.attributes.map { "\($0.name)=\($0.value)" } == ["b=2"])
        #expect(buffer.readableBytes == 0)
    }

    /// A NUL or other control byte in a value would make the stored key
    /// differ from the logged one: the request is refused, naming the attribute.
    @Test(arguments: ["sender=a@example.org\u{0}x\n\n", "recipient=b\u{1B}[31m\n\n", "helo_name=h\u{7F}\n\n",
                      "sender=a\rb\n\n", "send\u{0}er=a\n\n"])
    func controlBytesAreRefused(input: String) throws {
        let error = try #require(decodeError(input))
        #expect(error.code == .controlByte)
        #expect(error.detail.contains("attribute"))
    }

    @Test func controlByteErrorNamesTheAttribute() throws {
        let error = try #require(decodeError("sender=a\u{0}b\n\n"))
        #expect(error.description.contains("\"sender\""))
    }
}

@Suite struct PolicyReplyTests {
    @Test func encodesActionAndBlankLine() {
        var buffer = ByteBuffer()
        PolicyReply(action: "DEFER_IF_PERMIT Greylisted").write(into: &buffer)
        #expect(String(buffer: buffer) == "action=DEFER_IF_PERMIT Greylisted\n\n")
    }

    @Test func newlinesCannotEndAReplyEarly() {
        var buffer = ByteBuffer()
        PolicyReply(action: "DEFER x\n\naction=OK\r").write(into: &buffer)
        #expect(String(buffer: buffer) == "action=DEFER x  action=OK \n\n")
    }
}
