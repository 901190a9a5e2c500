import GreylagCore

/// The 64-bit key of a triplet in the SQLite store: SipHash-2-4 of its
/// network, sender and recipient, with a key of the store's own.
///
/// The triplets table is a rowid table: rows are appended in the order they
/// are first seen, and an index on this hash finds them. Compared with a
/// primary key of the three texts, an insert puts a 16-byte entry at a
/// random place in a small index instead of a whole row at a random place
/// in the table, and a lookup compares integers instead of text. Each store
/// draws its key from the system's random source when its table is made
/// (`SQLiteSchema`), so nobody who does not hold the file can choose
/// addresses whose hashes collide; a collision costs only a row read and
/// compared, never a wrong answer (`SQLiteHotPath` compares the texts).
struct TripletHash: Sendable, Equatable {
    let k0: UInt64
    let k1: UInt64

    init(k0: UInt64, k1: UInt64) {
        self.k0 = k0
        self.k1 = k1
    }

    /// A key from the system's random source.
    static func random() -> TripletHash {
        var g = SystemRandomNumberGenerator()
        return TripletHash(k0: g.next(), k1: g.next())
    }

    /// The hash of `t`: its three texts' UTF-8 bytes, each followed by a
    /// 0xFF byte, which UTF-8 never contains.
    func callAsFunction(_ t: Triplet) -> Int64 {
        hash(t.network, t.sender, t.recipient)
    }

    func hash(_ network: String, _ sender: String, _ recipient: String) -> Int64 {
        var state = SipHash24(k0: k0, k1: k1)
        var network = network, sender = sender, recipient = recipient
        network.withUTF8 { state.add($0) }
        state.add(0xFF)
        sender.withUTF8 { state.add($0) }
        state.add(0xFF)
        recipient.withUTF8 { state.add($0) }
        state.add(0xFF)
        return Int64(bitPattern: state.finish())
    }
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012), fed a byte at a time or a
/// buffer at a time.
struct SipHash24 {
    private var v0: UInt64, v1: UInt64, v2: UInt64, v3: UInt64
    /// Bytes not yet making a whole word, little-endian in the low bits.
    private var tail: UInt64 = 0
    private var length = 0

    init(k0: UInt64, k1: UInt64) {
        v0 = k0 ^ 0x736f_6d65_7073_6575
        v1 = k1 ^ 0x646f_7261_6e64_6f6d
        v2 = k0 ^ 0x6c79_6765_6e65_7261
        v3 = k1 ^ 0x7465_6462_7974_6573
    }

    private mutating func round() {
        v0 &+= v1; v1 = v1.rotated(13); v1 ^= v0; v0 = v0.rotated(32)
        v2 &+= v3; v3 = v3.rotated(16); v3 ^= v2
        v0 &+= v3; v3 = v3.rotated(21); v3 ^= v0
        v2 &+= v1; v1 = v1.rotated(17); v1 ^= v2; v2 = v2.rotated(32)
    }

    private mutating func compress(_ m: UInt64) {
        v3 ^= m
        round(); round()
        v0 ^= m
    }

    mutating func add(_ byte: UInt8) {
        tail |= UInt64(byte) << (UInt64(length & 7) * 8)
        length &+= 1
        if length & 7 == 0 {
            compress(tail)
            tail = 0
        }
    }

    mutating func add(_ bytes: UnsafeBufferPointer<UInt8>) {
        var i = 0
        // Bytes into the tail until it is empty, then whole words straight
        // from the buffer, then the rest into the tail.
        while i < bytes.count && length & 7 != 0 {
            add(bytes[i])
            i += 1
        }
        let raw = UnsafeRawBufferPointer(bytes)
        while bytes.count - i >= 8 {
            compress(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
            length &+= 8
            i += 8
        }
        while i < bytes.count {
            add(bytes[i])
            i += 1
        }
    }

    mutating func finish() -> UInt64 {
        compress(tail | (UInt64(truncatingIfNeeded: length) << 56))
        v2 ^= 0xFF
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}

private extension UInt64 {
    func rotated(_ n: UInt64) -> UInt64 { (self << n) | (self >> (64 - n)) }
}
