/// The greylisting rules in force: timings, keying and modes.
/// Durations are seconds. Defaults follow ARCHITECTURE.md.
public struct GreylistPolicy: Sendable, Hashable {
    /// A new triplet is deferred until this long after it was first seen.
    public var delay: Int64 = 300
    /// A deferred triplet that does not come back within this is forgotten.
    public var retryWindow: Int64 = 2 * 86_400
    /// A passed triplet stays passed this long after its last use.
    public var passTTL: Int64 = 36 * 86_400
    /// A client network that passed this many distinct triplets skips
    /// greylisting; 0 turns client auto-whitelisting off.
    public var clientAutowhitelist: Int64 = 5
    /// How client addresses become networks.
    public var keying = NetworkKeying()
    /// Normalise senders (BATV, +ext, VERP numbers) before keying.
    public var normalizeSender = true
    /// Every defer becomes a pass (logged as "would defer").
    public var dryRun = false

    public init() {}
}
