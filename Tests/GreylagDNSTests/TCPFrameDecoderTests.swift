@testable import GreylagDNS
import NIOCore
import NIOTestUtils
import Testing

/// DNS over TCP: messages with a two-byte length in front (RFC 1035 4.2.2),
/// whole, byte by byte and in random splits.
@Suite struct TCPFrameDecoderTests {
    @Test func framesSplitAnywhereDecodeTheSame() throws {
        func frame(_ bytes: [UInt8]) -> ByteBuffer {
            var b = ByteBuffer()
            b.writeInteger(UInt16(bytes.count))
            b.writeBytes(bytes)
            return b
        }
        let messages: [[UInt8]] = [[1, 2, 3], [], Array(repeating: 7, count: 1500)]
        var input = ByteBuffer()
        for m in messages { var f = frame(m); input.writeBuffer(&f) }
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(input, messages.map { ByteBuffer(bytes: $0) })],
            decoderFactory: { DNSClient.TCPFrameDecoder() })
    }
}
