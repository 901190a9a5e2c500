/// A white- or blacklist.
public enum ListKind: String, Sendable, Hashable, CaseIterable, Codable {
    case whitelist
    case blacklist
}

/// A list entry a postmaster added with `greylag whitelist|blacklist add`,
/// kept in the store (origin MANUAL) so it survives restarts and is shared
/// by every daemon on the same store.
public struct ManualEntry: Sendable, Hashable, Codable {
    /// Store-assigned number, shown in listings and rule origins.
    public var id: Int64
    public var list: ListKind
    public var field: SelectorField
    /// The value as given, in the forms of the configuration keys.
    public var value: String
    public var comment: String
    /// Unix seconds.
    public var created: Int64
    /// Unix seconds after which the entry no longer applies; nil: never.
    public var expires: Int64?

    public init(id: Int64, list: ListKind, field: SelectorField, value: String, comment: String = "",
                created: Int64, expires: Int64? = nil) {
        self.id = id
        self.list = list
        self.field = field
        self.value = value
        self.comment = comment
        self.created = created
        self.expires = expires
    }

    /// The rule this entry stands for; throws if the value does not parse.
    public func rule() throws(ListSyntaxError) -> ListRule {
        try ListRule(field: field, text: value, origin: "manual #\(id)", expires: expires)
    }
}
