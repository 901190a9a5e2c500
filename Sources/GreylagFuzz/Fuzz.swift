import GreylagCore
import GreylagServer
import Milter
import NIOCore
import PolicyProtocol

/// The fuzz targets: what a peer or a configuration file can feed greylag,
/// run through the same code the daemon runs. Each takes any bytes and must
/// return without crashing; errors are the expected outcome of bad input.
/// The libFuzzer entry points (`Fuzz/`, built by `scripts/fuzz.sh`) and the
/// regression tests of kept inputs call these.
public enum Fuzz {
    public static let targets: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
        "policy": policy, "milter": milter, "config": config,
    ]

    static let engine = Engine()
    static let now: Int64 = 1_800_000_000

    /// Bytes from a policy client: decoded into requests as they would
    /// arrive, each turned into a query, decided by the engine's rules, and
    /// answered with a defer and a pass.
    @Sendable public static func policy(_ bytes: UnsafeRawBufferPointer) {
        var buffer = ByteBuffer(bytes: bytes)
        var decoder = PolicyRequestDecoder()
        // A plain listener and a `policy.helper_listen` one (greylag_* honoured).
        var sessions = [PolicySession(config: PolicyReplyConfig()),
                        PolicySession(config: PolicyReplyConfig(), helperAttributes: true)]
        var out = ByteBuffer()
        let encoder = PolicyReplyEncoder()
        do {
            while let request = try decoder.decode(buffer: &buffer) {
                for i in sessions.indices {
                    _ = sessions[i].helperNotes(request)
                    guard case .decide(let query) = sessions[i].requestReceived(request) else { continue }
                    _ = engine.prepare(query, now: now)
                    let triplet = engine.triplet(for: query)
                    for verdict in [Verdict(action: .defer, reason: .newTriplet, timeLeft: 300, triplet: triplet),
                                    Verdict(action: .pass, reason: .delayElapsed, delayed: 400, triplet: triplet)] {
                        try encoder.encode(data: sessions[i].verdictReceived(verdict, for: request, now: now),
                                           out: &out)
                    }
                }
            }
            _ = try decoder.decodeLast(buffer: &buffer, seenEOF: true)
        } catch {
            // A bad request closes the connection: the expected outcome.
        }
    }

    /// Bytes from an MTA on a milter connection: packets decoded, run
    /// through the session, every recipient deferred, replies encoded.
    @Sendable public static func milter(_ bytes: UnsafeRawBufferPointer) {
        var buffer = ByteBuffer(bytes: bytes)
        var decoder = MilterDecoder()
        var session = MilterSession(config: MilterReplyConfig())
        var out = ByteBuffer()
        let encoder = MilterEncoder()
        do {
            while let command = try decoder.decode(buffer: &buffer) {
                switch session.received(command, now: now) {
                case .reply(let responses):
                    for r in responses { try encoder.encode(data: r, out: &out) }
                case .decide(let query):
                    _ = engine.prepare(query, now: now)
                    let verdict = Verdict(action: .defer, reason: .newTriplet, timeLeft: 300,
                                          triplet: engine.triplet(for: query))
                    try encoder.encode(data: session.verdictReceived(verdict), out: &out)
                default:
                    break
                }
            }
        } catch {
            // A bad packet closes the connection: the expected outcome.
        }
    }

    /// A configuration file's text.
    @Sendable public static func config(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? ConfigurationLoader.parse(text, file: "/fuzz/greylag.toml")
    }
}
