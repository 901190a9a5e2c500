/// The greylisting key: client network, normalised sender, recipient.
public struct Triplet: Hashable, Sendable, CustomStringConvertible {
    public var network: String
    public var sender: String
    public var recipient: String

    public init(network: String, sender: String, recipient: String) {
        self.network = network
        self.sender = sender
        self.recipient = recipient
    }

    public var description: String { "\(network)/\(sender)/\(recipient)" }

    /// Sender and recipient of a client-only triplet (greylisting at
    /// connection time); never a real address.
    public static let connectionMarker = "<connection>"
}

/// Who created a record: the engine (AUTO) or a postmaster (MANUAL).
public enum RecordOrigin: String, Sendable, Hashable, CaseIterable {
    case auto = "AUTO"
    case manual = "MANUAL"
}

/// One stored triplet, with the columns operators of the qmail/MySQL
/// greylisting setups know. Times are Unix seconds.
public struct GreylistRecord: Hashable, Sendable {
    public var triplet: Triplet
    public var firstSeen: Int64
    public var lastSeen: Int64
    /// Until this moment the triplet is deferred (first seen + delay).
    public var blockExpires: Int64
    /// After this moment the record is forgotten (retry window or pass TTL).
    public var recordExpires: Int64
    public var blockedCount: Int64
    public var passedCount: Int64
    public var origin: RecordOrigin

    public init(triplet: Triplet, firstSeen: Int64, lastSeen: Int64, blockExpires: Int64,
                recordExpires: Int64, blockedCount: Int64, passedCount: Int64, origin: RecordOrigin = .auto) {
        self.triplet = triplet
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.blockExpires = blockExpires
        self.recordExpires = recordExpires
        self.blockedCount = blockedCount
        self.passedCount = passedCount
        self.origin = origin
    }

    /// A record has passed once any attempt was let through.
    public var hasPassed: Bool { passedCount > 0 }
}

/// What the store knows about a triplet and its client network when a
/// decision is made.
public struct TripletState: Sendable, Hashable {
    public var record: GreylistRecord?
    /// Distinct triplets of this client network that passed greylisting and
    /// have not expired.
    public var clientPassedTriplets: Int64

    public init(record: GreylistRecord?, clientPassedTriplets: Int64 = 0) {
        self.record = record
        self.clientPassedTriplets = clientPassedTriplets
    }
}

/// The writes a decision asks the store to make, in the same transaction
/// as the read it was based on.
public struct StoreChange: Sendable, Hashable {
    public enum ClientChange: Sendable, Hashable {
        case none
        /// Keep the client network's passed count alive until `expires`.
        case refresh(expires: Int64)
        /// One more distinct triplet of this network passed.
        case countPass(expires: Int64)
    }

    /// The record to write (insert or replace), or nil to leave it.
    public var record: GreylistRecord?
    public var client: ClientChange

    public init(record: GreylistRecord? = nil, client: ClientChange = .none) {
        self.record = record
        self.client = client
    }

    public static let none = StoreChange()
}

/// A client network's auto-whitelist state: how many distinct triplets of
/// it passed greylisting and until when that count is remembered.
public struct ClientRecord: Hashable, Sendable {
    public var network: String
    public var passedTriplets: Int64
    public var firstSeen: Int64
    public var lastSeen: Int64
    public var recordExpires: Int64

    public init(network: String, passedTriplets: Int64, firstSeen: Int64, lastSeen: Int64, recordExpires: Int64) {
        self.network = network
        self.passedTriplets = passedTriplets
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.recordExpires = recordExpires
    }
}
