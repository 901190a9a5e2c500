import GreylagCore
import Testing

@Suite struct AddressNormalizerTests {
    @Test(arguments: [
        ("", "<>"),
        ("<>", "<>"),
        ("User@Example.ORG", "user@example.org"),
        ("<user@example.org>", "user@example.org"),
        ("prvs=4123456789=user@example.org", "user@example.org"),
        ("PRVS=0123abcdef=User@Example.org", "user@example.org"),
        ("msprvs1=19123abcdEf=bounces@example.org", "bounces@example.org"),
        ("btv1==0123abcdef==user@example.org", "user@example.org"),
        ("user+list-123@example.org", "user@example.org"),
        ("bounce-12345-user=example.net@lists.example.org", "bounce-#-user=example.net@lists.example.org"),
        ("bounce.98765.42@example.org", "bounce.#.#@example.org"),
        ("user2024@example.org", "user2024@example.org"),
        ("12345@example.org", "#@example.org"),
        ("+weird@example.org", "+weird@example.org"),
        ("no-at-sign", "no-at-sign"),
        ("Ünïcode+x@Example.org", "ünïcode@example.org"),
        ("user_12@example.org", "user_12@example.org"),
        ("12-ab-34@example.org", "#-ab-#@example.org"),
        ("  <Spaced@Example.org>  ", "spaced@example.org"),
        ("btv1==abc==", "btv1==abc=="),
    ])
    func normalisesSender(input: String, expected: String) {
        #expect(AddressNormalizer.sender(input) == expected)
    }

    @Test func normalisationCanBeTurnedOff() {
        #expect(AddressNormalizer.sender("Bounce-123+x@Example.org", normalize: false) == "bounce-123+x@example.org")
        #expect(AddressNormalizer.sender("", normalize: false) == "<>")
    }

    @Test func retriesWithDifferentTagsShareAKey() {
        let first = AddressNormalizer.sender("prvs=1111aaaaaa=news+4711@example.org")
        let retry = AddressNormalizer.sender("prvs=2222bbbbbb=news+4712@example.org")
        #expect(first == retry)
    }

    @Test(arguments: [
        // SRS0 with each separator the scheme allows, any case.
        ("SRS0=HHH=TT=example.org=user@forwarder.example", "user@example.org"),
        ("srs0+HHH=TT=Example.org=User@forwarder.example", "user@example.org"),
        ("SRS0-abcd=Zq=example.org=user@forwarder.example", "user@example.org"),
        ("<SRS0=ab12=X3=example.org=news+1234@fwd.example>", "news@example.org"),
        // The original local part may hold "=" and a BATV tag.
        ("SRS0=HHH=TT=example.org=a=b@fwd.example", "a=b@example.org"),
        ("SRS0=HHH=TT=example.org=prvs=0123456789=user@fwd.example", "user@example.org"),
        // SRS1: a second forwarder; the SRS0 separator follows "forwarder=".
        ("SRS1=HHH=first.example==HHH=TT=example.org=user@second.example", "user@example.org"),
        ("srs1+xyz=first.example=+HHH=TT=example.org=user@second.example", "user@example.org"),
        ("SRS1=HHH=first.example=-HHH=TT=example.org=user@second.example", "user@example.org"),
        // Malformed: stays as it is (then the usual normalisation).
        ("SRS0=HHH=TT=example.org=@fwd.example", "srs0=hhh=tt=example.org=@fwd.example"),
        ("SRS0=HHH=TT=@fwd.example", "srs0=hhh=tt=@fwd.example"),
        ("SRS0==TT=example.org=user@fwd.example", "srs0==tt=example.org=user@fwd.example"),
        ("SRS0=HHH==example.org=user@fwd.example", "srs0=hhh==example.org=user@fwd.example"),
        ("SRS0*HHH=TT=example.org=user@fwd.example", "srs0*hhh=tt=example.org=user@fwd.example"),
        ("SRS2=HHH=TT=example.org=user@fwd.example", "srs2=hhh=tt=example.org=user@fwd.example"),
        ("SRS1=HHH=first.example=HHH=TT=example.org=user@s.example", "srs1=hhh=first.example=hhh=tt=example.org=user@s.example"),
        ("SRS1=HHH=first.example==", "srs1=hhh=first.example=="),
        ("SRS1==@x", "srs1==@x"),
        ("SRS0=", "srs0="),
        ("SRS0=a=b=c=d", "srs0=a=b=c=d"),
        ("srs0@example.org", "srs0@example.org"),
    ])
    func decodesSRS(input: String, expected: String) {
        #expect(AddressNormalizer.sender(input) == expected)
    }

    @Test func srsRetriesThroughOtherForwardersShareAKey() {
        let direct = AddressNormalizer.sender("user@example.org")
        let day1 = AddressNormalizer.sender("SRS0=a1b2=T1=example.org=user@fwd1.example")
        let day2 = AddressNormalizer.sender("SRS0=c3d4=T2=example.org=user@fwd2.example")
        let twice = AddressNormalizer.sender("SRS1=e5f6=fwd1.example==c3d4=T2=example.org=user@fwd2.example")
        #expect(Set([direct, day1, day2, twice]).count == 1)
    }

    @Test func srsIsKeptWhenNormalisationIsOff() {
        #expect(AddressNormalizer.sender("SRS0=HHH=TT=example.org=user@fwd.example", normalize: false)
            == "srs0=hhh=tt=example.org=user@fwd.example")
    }

    @Test func hostileSRSNeverTraps() {
        // Every prefix of a long SRS1 address, and separators everywhere.
        let long = "SRS1=" + String(repeating: "=", count: 5000) + "+-" + String(repeating: "a=", count: 5000) + "@x"
        var samples = ["SRS1=h=f==h=t=d=l@x", "SRS0=h=t=d=l@x", long, "SRS1", "SRS1=@", "SRS0==@==@="]
        for s in samples.prefix(2) { samples += s.indices.map { String(s[..<$0]) } }
        for s in samples {
            let out = AddressNormalizer.sender(s)
            #expect(!out.isEmpty)
        }
        #expect(AddressNormalizer.decodeSRS(Array("srs1=h=f==h=t=d=l@x".utf8)).map { String(decoding: $0, as: UTF8.self) } == "l@d")
    }

    @Test func recipientIsLowerCasedOnly() {
        #expect(AddressNormalizer.recipient("<User+Tag@Example.NET>") == "user+tag@example.net")
    }

    /// A bare lower-case recipient is returned as it came; every other
    /// form still loses its brackets, blanks and capitals.
    @Test(arguments: [
        ("user@example.net", "user@example.net"),
        ("a-much-longer-recipient.name+tag@mail.example.net", "a-much-longer-recipient.name+tag@mail.example.net"),
        ("<user@example.net>", "user@example.net"),
        (" user@example.net", "user@example.net"),
        ("user@example.net\t", "user@example.net"),
        ("user@Example.net", "user@example.net"),
        ("ünï@example.net", "ünï@example.net"),
        ("ÜNÏ@example.net", "ünï@example.net"),
        ("<>", ""),
        ("<", "<"),
        ("", ""),
    ])
    func recipientForms(input: String, expected: String) {
        #expect(AddressNormalizer.recipient(input) == expected)
    }
}
