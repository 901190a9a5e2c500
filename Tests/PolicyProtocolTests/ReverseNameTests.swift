import GreylagCore
import PolicyProtocol
import Testing

/// What the policy request says of the client's reverse name.
@Suite struct PolicyReverseNameTests {
    func q(_ attributes: [String: String]) -> GreylistQuery {
        var all = ["client_address": "192.0.2.7", "sender": "a@example.org", "recipient": "b@example.net",
                   "protocol_state": "RCPT"]
        all.merge(attributes) { $1 }
        return PolicySession.query(from: PolicyRequest(attributes: all), helperAttributes: false)
    }

    @Test func postfixNamesMapToReverseNames() {
        let confirmed = q(["client_name": "MX.example.org", "reverse_client_name": "mx.example.org"])
        #expect(confirmed.reverseName == .confirmed("mx.example.org") && confirmed.ptrName == "mx.example.org")
        let unconfirmed = q(["client_name": "unknown", "reverse_client_name": "DSL-7.Example.NET"])
        #expect(unconfirmed.reverseName == .unconfirmed && unconfirmed.ptrName == "dsl-7.example.net")
        let absent = q(["client_name": "unknown", "reverse_client_name": "unknown"])
        #expect(absent.reverseName == .absent && absent.ptrName.isEmpty)
        // Exim's minimal request and the qmail helpers send no reverse_client_name: greylag looks it up.
        #expect(q(["client_name": "unknown"]).reverseName == .notChecked)
        #expect(q(["client_name": "mx.example.org"]).reverseName == .notChecked)
    }
}
