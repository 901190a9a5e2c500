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

    @Test func recipientIsLowerCasedOnly() {
        #expect(AddressNormalizer.recipient("<User+Tag@Example.NET>") == "user+tag@example.net")
    }
}
