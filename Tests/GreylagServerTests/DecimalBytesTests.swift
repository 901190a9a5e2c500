@testable import GreylagServer
import Testing

@Suite struct DecimalBytesTests {
    /// The decision line's numbers are written as bytes, reversed in place.
    @Test(arguments: [Int64(0), 7, 10, 300, 86_400, -1, -42, Int64.max, Int64.min])
    func decimalsReadAsSwiftPrintsThem(value: Int64) {
        var bytes = Array("retry_in=".utf8)
        bytes.appendDecimal(value)
        bytes.append(UInt8(ascii: "s"))
        #expect(String(decoding: bytes, as: UTF8.self) == "retry_in=\(value)s")
    }
}
