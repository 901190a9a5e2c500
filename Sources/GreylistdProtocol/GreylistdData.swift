import GreylagCore

/// What the data words of a greylistd request stand for in greylag's terms.
///
/// greylistd hashes whatever words it is sent; greylag keys by client
/// network, sender and recipient, so that its lists, delay and store apply.
/// The shapes sites send:
///
/// - `IP SENDER RCPT` (Debian's `acl_check_rcpt`), the address possibly
///   masked (`${mask:$sender_host_address/24}` gives `192.0.2.0/24`): a
///   triplet, keyed by greylag's own network prefix;
/// - `IP RCPT` (Debian's `acl_check_data` for the null sender, one
///   recipient): a triplet with the null sender;
/// - `IP` alone (greylistd's `singlecheck` entries): the client network
///   alone, as the qmail tcpserver wrapper keys it;
/// - anything else (more words, a first word that is no address, a
///   comma-separated `$recipients` list): a key made of the words
///   themselves, greylisted like a triplet but never counted towards a
///   client network's auto-whitelisting.
public enum GreylistdData: Sendable, Hashable {
    case triplet(client: String, sender: String, recipient: String)
    case client(String)
    case words(String)

    /// The network of a word-keyed entry: no address, so never a client's.
    public static let wordsNetwork = "greylistd"
    /// The sender of a word-keyed entry: no address can be written so.
    public static let wordsSender = "<greylistd>"

    /// Classifies data words (already lower-cased, at least one).
    public init(words: [String]) {
        let client = words.first.flatMap(Self.clientAddress)
        if let client, !words.dropFirst().contains(where: { $0.hasSuffix(",") || $0.hasPrefix(",") }) {
            switch words.count {
            case 1:
                self = .client(client)
                return
            case 2:
                self = .triplet(client: client, sender: "", recipient: words[1])
                return
            case 3:
                self = .triplet(client: client, sender: words[1], recipient: words[2])
                return
            default:
                break
            }
        }
        self = .words(words.joined(separator: " "))
    }

    /// The address of a word that is an IP address or a network written
    /// `ADDRESS/PREFIX` (prefix in range), nil otherwise.
    static func clientAddress(_ word: String) -> String? {
        if let a = IPAddress(word) { return a.description }
        guard word.contains("/"), let n = IPNetwork(word) else { return nil }
        return n.address.description
    }

    /// The greylisting query, for the engine's lists and (unless `key` is
    /// set) its triplet.
    public func query(origin: String = "greylistd") -> GreylistQuery {
        switch self {
        case .triplet(let client, let sender, let recipient):
            return GreylistQuery(stage: .rcpt, clientAddress: client, sender: sender, recipient: recipient, origin: origin)
        case .client(let client):
            var q = GreylistQuery(stage: .rcpt, clientAddress: client, sender: "", recipient: "", origin: origin)
            q.connectionOnly = true
            return q
        case .words:
            return GreylistQuery(stage: .rcpt, clientAddress: "", sender: "", recipient: "", origin: origin)
        }
    }

    /// The triplet word-keyed data is stored under; nil for the other
    /// shapes, which the engine keys itself.
    public var key: Triplet? {
        guard case .words(let text) = self else { return nil }
        return Triplet(network: Self.wordsNetwork, sender: Self.wordsSender, recipient: text)
    }

    /// The triplet this data is stored under with `engine`'s keying, nil
    /// when it has none (a recipient that normalises to nothing).
    public func triplet(engine: Engine) -> Triplet? {
        key ?? engine.triplet(for: query())
    }
}
