import Foundation
import GreylagServer
import Logging
import Testing

@Suite struct LogWriterTests {
    /// Logs through a writer into a pipe and returns what came out.
    func capture(maxBuffered: Int = 1 << 20, _ body: (Logger) -> Void) -> String {
        let pipe = Pipe()
        let queue = DispatchQueue(label: "test.log")
        let writer = LogWriter(fd: pipe.fileHandleForWriting.fileDescriptor, maxBuffered: maxBuffered, queue: queue)
        let logger = Logger(label: "greylag") { GreylagLogHandler(label: $0, level: .info, writer: writer) }
        queue.suspend()  // hold the writes back so the whole burst is buffered
        body(logger)
        queue.resume()
        writer.flush()
        try? pipe.fileHandleForWriting.close()
        return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    @Test func writesOneFormattedLinePerEventAtOrAboveTheLevel() throws {
        let out = capture { logger in
            logger.debug("hidden")
            logger.info("defer: client=192.0.2.7", metadata: ["greylag.peer": "127.0.0.1:4000"])
            logger.warning("second")
        }
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        let first = try #require(lines.first)
        #expect(first.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ info greylag: defer: client=192\.0\.2\.7 greylag\.peer=127\.0\.0\.1:4000$"#,
                            options: .regularExpression) != nil, "\(first)")
        #expect(lines.last?.hasSuffix(" warning greylag: second") == true)
    }

    @Test func overflowIsDroppedAndCounted() {
        let out = capture(maxBuffered: 200) { logger in
            for i in 0..<50 { logger.info("line \(i) with some padding to fill the buffer quickly") }
        }
        let lines = out.split(separator: "\n")
        #expect(lines.count == 3)  // two lines fit in 200 bytes, then the drop notice
        #expect(out.contains("greylag: 48 log line(s) dropped"))
    }
}
