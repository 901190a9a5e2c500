/// Who is greylisted at all: exemptions, black- and whitelists, recipient
/// scope and per-recipient dry run. Applied by `Engine.prepare` in the order
/// of ARCHITECTURE.md, before any stored state is read.
public struct ListRules: Sendable {
    /// Which recipients greylisting applies to.
    public enum ScopeMode: String, Sendable, Hashable, CaseIterable {
        /// Greylist every recipient except those in `scope` (the default;
        /// with an empty scope list, everyone is greylisted).
        case optOut = "opt-out"
        /// Greylist only the recipients in `scope`.
        case optIn = "opt-in"
    }

    /// Clients that authenticated (SMTP AUTH) are never greylisted.
    public var exemptAuthenticated = true
    /// Client networks that are never greylisted (like Postfix `mynetworks`).
    public var trusted = RuleSet()
    /// Refused permanently.
    public var blacklist = RuleSet()
    /// Never greylisted.
    public var whitelist = RuleSet()
    public var scopeMode: ScopeMode = .optOut
    /// The recipients opted out of (or, in opt-in mode, into) greylisting.
    public var scope = RuleSet()
    /// Recipients for which a defer is turned into a pass and logged.
    public var dryRun = RuleSet()
    /// `[[rules]]`, in order: checked after the exemptions, before the
    /// black- and whitelist; the first that matches decides.
    public var rules: [GreylistRule] = []

    public init() {}

    /// The parts of a query any of the rules looks at.
    var fields: SelectorFields {
        rules.reduce(trusted.fields.union(blacklist.fields).union(whitelist.fields).union(scope.fields)
            .union(dryRun.fields)) { $0.union($1.fields) }
    }

    /// Whether any rule could apply; false lets the engine skip preparing
    /// a match subject.
    var hasRules: Bool {
        !trusted.isEmpty || !blacklist.isEmpty || !whitelist.isEmpty || !scope.isEmpty
            || !dryRun.isEmpty || scopeMode == .optIn || !rules.isEmpty
    }
}
