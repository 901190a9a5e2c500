import GreylagCore
import GreylagDNS

/// Macro expansion (RFC 7208 section 7) and explanations (section 6.2).
///
///     macro-string = *( macro-expand / macro-literal )
///     macro-expand = ( "%{" macro-letter transformers *delimiter "}" ) / "%%" / "%_" / "%-"
///     macro-letter = "s" / "l" / "o" / "d" / "i" / "p" / "h" / "c" / "r" / "t" / "v"
///     transformers = *DIGIT [ "r" ]
///     delimiter    = "." / "-" / "+" / "," / "/" / "_" / "="
///
/// A value is split at the delimiters (default "."), reversed with "r",
/// cut to its rightmost DIGIT parts and joined with "."; an upper-case
/// letter URL-escapes the result. `c`, `r` and `t` are for explanations only.
extension SPFRun {
    // MARK: - Macros (section 7)

    /// Expands a domain-spec into a name to look up: at most 253 octets,
    /// cut from the left label by label (section 4.8).
    func expandName(_ spec: MacroString, domain: String) throws(SPFStop) -> String {
        var bytes = try expand(spec, domain: domain, explain: false)
        if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        if bytes.count > 253 {
            // The first label boundary that leaves at most 253 octets.
            var cut = bytes.count - 253
            while cut < bytes.count, bytes[cut - 1] != UInt8(ascii: ".") { cut += 1 }
            bytes = Array(bytes[cut...])
        }
        let name = String(decoding: bytes, as: UTF8.self)
        let labels = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard !bytes.isEmpty, bytes.count <= 253, labels.allSatisfy({ !$0.isEmpty && $0.count <= 63 }) else {
            throw .perm("a target name that is not a valid domain name")
        }
        return name
    }

    func expand(_ spec: MacroString, domain: String, explain: Bool) throws(SPFStop) -> [UInt8] {
        var out: [UInt8] = []
        for piece in spec.pieces {
            switch piece {
            case .literal(let b), .escape(let b):
                out += b
            case .expand(let letter, let urlEscape, let keep, let reverse, let delimiters):
                var value = macroValue(letter, domain: domain)
                if keep != nil || reverse || !delimiters.isEmpty {
                    let split = delimiters.isEmpty ? [UInt8(ascii: ".")] : delimiters
                    var parts = value.split(omittingEmptySubsequences: false, whereSeparator: { split.contains($0) })
                    if reverse { parts.reverse() }
                    if let keep, parts.count > keep { parts = Array(parts.suffix(keep)) }
                    value = Array(parts.joined(separator: [UInt8(ascii: ".")]))
                }
                if urlEscape { value = Self.urlEscape(value) }
                out += value
            }
            if out.count > limits.expansionLength {
                if explain { return Array(out.prefix(limits.expansionLength)) }
                throw .perm("a macro expansion longer than \(limits.expansionLength) octets")
            }
        }
        return out
    }

    func macroValue(_ letter: UInt8, domain: String) -> [UInt8] {
        switch letter {
        case UInt8(ascii: "s"): return sender
        case UInt8(ascii: "l"): return local
        case UInt8(ascii: "o"): return senderDomain
        case UInt8(ascii: "d"): return Array(domain.utf8)
        case UInt8(ascii: "i"): return Self.dotted(ip)
        case UInt8(ascii: "p"): return Array(pMacro(domain).utf8)
        case UInt8(ascii: "h"): return helo
        case UInt8(ascii: "v"): return Array((ip.isIPv4 ? "in-addr" : "ip6").utf8)
        case UInt8(ascii: "c"): return Array(ip.description.utf8)
        case UInt8(ascii: "r"): return Array(evaluator.receivingHost.utf8.prefix(253))
        case UInt8(ascii: "t"): return Array(String(evaluator.clock()).utf8)
        default: return []
        }
    }

    /// The `%{p}` value: the validated name equal to the domain, else one
    /// under it, else any, else `unknown` (the names are looked up by
    /// `preparePMacro` before an expansion that needs them).
    func pMacro(_ domain: String) -> String {
        let names = validatedNames ?? []
        return names.first(where: { $0 == domain }) ?? names.first(where: { $0.hasSuffix("." + domain) }) ?? names.first
            ?? "unknown"
    }

    func preparePMacro(_ spec: MacroString) async throws(SPFStop) {
        guard validatedNames == nil, spec.pieces.contains(where: {
            if case .expand(let l, _, _, _, _) = $0 { return l == UInt8(ascii: "p") }
            return false
        }) else { return }
        _ = try await validatedPTRNames(countVoid: false)
    }

    /// `expandName` after the lookups `%{p}` needs.
    func expandTarget(_ spec: MacroString, domain: String) async throws(SPFStop) -> String {
        try await preparePMacro(spec)
        return try expandName(spec, domain: domain)
    }

    static func urlEscape(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        let hex = Array("0123456789ABCDEF".utf8)
        for b in bytes {
            if SPFRecord.isAlpha(b) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
                || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~") {
                out.append(b)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0xF)]]
            }
        }
        return out
    }

    // MARK: - Explanation (section 6.2)

    func explanation(_ spec: MacroString, domain: String) async -> String? {
        do {
            let target = try await expandTarget(spec, domain: domain)
            guard case .records(let records) = try await lookup(target, .txt) else { return nil }
            let texts = records.compactMap { r -> [UInt8]? in
                guard case .txt(let parts) = r else { return nil }
                return Array(parts.joined().prefix(limits.recordLength + 1))
            }
            guard texts.count == 1, let text = texts.first, text.count <= limits.recordLength else { return nil }
            let parsed = try MacroString.parse(text[...], explain: true)
            try await preparePMacro(parsed)
            let expanded = try expand(parsed, domain: domain, explain: true)
            return String(decoding: expanded.prefix(limits.explanationLength), as: UTF8.self)
        } catch {
            return nil
        }
    }
}

extension Optional where Wrapped == MacroString {
    /// The expanded target of an optional domain-spec; the current domain without one.
    func asyncMapTarget(_ run: SPFRun, domain: String) async throws(SPFStop) -> String {
        guard let spec = self else { return domain }
        return try await run.expandTarget(spec, domain: domain)
    }
}
