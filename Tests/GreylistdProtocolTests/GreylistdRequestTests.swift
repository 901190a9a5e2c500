import GreylagCore
import GreylistdProtocol
import Testing

@Suite struct GreylistdRequestTests {
    func parse(_ s: String) throws(GreylistdRequest.Failure) -> GreylistdRequest {
        try GreylistdRequest.parse(Array(s.utf8))
    }

    @Test func debianACLRequestIsUpdateWithGreyTest() throws {
        let r = try parse("--grey 192.0.2.7 Alice@Example.ORG bob@example.net")
        #expect(r == GreylistdRequest(command: .update, options: ["grey"],
                                      words: ["192.0.2.7", "alice@example.org", "bob@example.net"]))
        #expect(try r.truthTest() == .grey)
        #expect(!r.needsAuthority)
    }

    @Test func plainDataIsUpdateWithoutTest() throws {
        let r = try parse("192.0.2.0/24 a@b c@d\n")
        #expect(r.command == .update && r.options.isEmpty && r.words.count == 3)
        #expect(try r.truthTest() == nil)
    }

    @Test func commandsAsGreylistClientSendsThem() throws {
        #expect(try parse("check --white 1.2.3.4 a@b c@d").command == .check)
        #expect(try parse("status 1.2.3.4").command == .status)
        #expect(try parse("STATS").command == .stats)
        let add = try parse("add --black 1.2.3.4")
        #expect(add.command == .add && add.needsAuthority)
        #expect(try add.addState() == .black)
        #expect(try parse("add 1.2.3.4 a b").addState() == .white)
        #expect(try parse("delete 1.2.3.4 a b").needsAuthority)
        #expect(try parse("list --white").needsAuthority)
        // greylistd's commands are bare words: a dashed one is a state option.
        let dashed = try parse("--stats")
        #expect(dashed.command == .update && dashed.words.isEmpty)
        #expect(throws: GreylistdRequest.Failure("'stats' is not a known state")) { try dashed.truthTest() }
        #expect(throws: GreylistdRequest.Failure("No such list: 'pink'")) { try parse("add --pink x").addState() }
    }

    @Test func onlyTheFirstOptionCounts() throws {
        #expect(try parse("--black --grey 1.2.3.4 a b").truthTest() == .black)
    }

    @Test func hostileInputIsRefusedWithGreylistdsErrorForm() throws {
        #expect(throws: GreylistdRequest.Failure("No data received")) { try parse("") }
        #expect(throws: GreylistdRequest.Failure("No data received")) { try parse(" \r\n\t") }
        #expect(throws: GreylistdRequest.Failure("request contains the control byte 0x0")) {
            try GreylistdRequest.parse([0x31, 0x00, 0x32])
        }
        #expect(throws: GreylistdRequest.Failure("request is not UTF-8 text")) {
            try GreylistdRequest.parse([0x31, 0x20, 0xFF, 0xFE])
        }
        #expect(throws: GreylistdRequest.Failure("request longer than 16384 bytes")) {
            try GreylistdRequest.parse([UInt8](repeating: 0x41, count: 16_385))
        }
        #expect(throws: GreylistdRequest.Failure("data word longer than 512 bytes")) {
            try parse("1.2.3.4 " + String(repeating: "a", count: 513))
        }
        let missing = GreylistdRequest.Failure("Missing argument")
        #expect(missing.answer == "error: Missing argument")
        // Eight-bit addresses (SMTPUTF8) are words like any other.
        #expect(try parse("1.2.3.4 jörg@example.de b@c").words[1] == "jörg@example.de")
    }

    @Test func answers() {
        #expect(GreylistdRequest.answer(.grey, test: nil) == "grey")
        #expect(GreylistdRequest.answer(.grey, test: .grey) == "true")
        #expect(GreylistdRequest.answer(.white, test: .grey) == "false")
        #expect(GreylistdRequest.state(of: .pass) == .white)
        #expect(GreylistdRequest.state(of: .defer) == .grey)
        #expect(GreylistdRequest.state(of: .reject) == .black)
    }
}

@Suite struct GreylistdDataTests {
    let engine = Engine()

    @Test func threeWordsAreTheEnginesTriplet() {
        let d = GreylistdData(words: ["192.0.2.7", "alice@example.org", "bob@example.net"])
        #expect(d == .triplet(client: "192.0.2.7", sender: "alice@example.org", recipient: "bob@example.net"))
        #expect(d.key == nil)
        #expect(d.triplet(engine: engine) == Triplet(network: "192.0.2.0/24", sender: "alice@example.org",
                                                       recipient: "bob@example.net"))
        #expect(d.query().origin == "greylistd")
    }

    @Test func maskedAddressKeysTheSameNetwork() {
        let d = GreylistdData(words: ["192.0.2.0/24", "a@b.c", "d@e.f"])
        #expect(d.triplet(engine: engine)?.network == "192.0.2.0/24")
        #expect(GreylistdData(words: ["2001:db8::1", "a@b.c", "d@e.f"]).triplet(engine: engine)?.network == "2001:db8::/64")
        // A prefix out of range is no network: the words are the key.
        #expect(GreylistdData(words: ["192.0.2.0/40", "a@b.c", "d@e.f"]).key != nil)
    }

    @Test func twoWordsAreTheNullSender() {
        let d = GreylistdData(words: ["192.0.2.7", "bob@example.net"])
        #expect(d.triplet(engine: engine) == Triplet(network: "192.0.2.0/24", sender: "<>", recipient: "bob@example.net"))
    }

    @Test func oneAddressIsTheClientAlone() {
        let d = GreylistdData(words: ["192.0.2.7"])
        #expect(d == .client("192.0.2.7"))
        #expect(d.query().connectionOnly)
        #expect(d.triplet(engine: engine)?.sender == Triplet.connectionMarker)
    }

    @Test func otherShapesAreKeyedByTheirWords() {
        for words in [["mail.example.org", "a@b", "c@d"], ["192.0.2.7", "a@b", "c@d", "extra"],
                      ["192.0.2.7", "a@b,", "c@d"], ["hello"]] {
            let d = GreylistdData(words: words)
            #expect(d == .words(words.joined(separator: " ")))
            #expect(d.key == Triplet(network: GreylistdData.wordsNetwork, sender: GreylistdData.wordsSender,
                                     recipient: words.joined(separator: " ")))
            #expect(d.triplet(engine: engine) == d.key)
        }
    }
}
