import Foundation
import GreylagCore
@testable import GreylagImport

enum Fixture {
    static func url(_ name: String) -> URL {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
            fatalError("missing fixture \(name)")
        }
        return url
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url(name)))
    }

    /// The fixture as text, as a caller that read the file into a String has it.
    static func text(_ name: String) throws -> String {
        String(decoding: try bytes(name), as: UTF8.self)
    }
}

func record(_ network: String, _ sender: String, _ recipient: String, first: Int64, last: Int64, block: Int64,
            expires: Int64, blocked: Int64, passed: Int64, origin: RecordOrigin = .auto) -> GreylistRecord {
    GreylistRecord(triplet: Triplet(network: network, sender: sender, recipient: recipient), firstSeen: first,
                   lastSeen: last, blockExpires: block, recordExpires: expires, blockedCount: blocked,
                   passedCount: passed, origin: origin)
}

extension ImportResult {
    func record(_ network: String, _ sender: String, _ recipient: String) -> GreylistRecord? {
        records.first { $0.triplet == Triplet(network: network, sender: sender, recipient: recipient) }
    }

    var skippedLines: [Int] { skipped.map(\.line) }
}
