import Foundation
import GreylagCore
import GreylagStore

/// The dashboard: one server-rendered HTML document with its styles inline
/// and its charts drawn as inline SVG; no script, no external asset, no
/// build step. Addresses are chosen by whoever connects to the MTA, so
/// every string from a query or the store goes through `html(_:)`; the
/// response also carries a Content-Security-Policy that allows no script.
public enum DashboardPage {
    /// The colours of the charts. Each chart draws in shades of its own so
    /// that a screenshot tells them apart (the browser test counts them).
    public static let hourly: [(series: DecisionHistory.Series, color: String)] = [
        (.passed, "#2e9d5b"), (.whitelisted, "#3a78d4"), (.deferred, "#e0851c"), (.rejected, "#c73a2f"),
    ]
    public static let daily: [(series: DecisionHistory.Series, color: String)] = [
        (.passed, "#6cc190"), (.whitelisted, "#7ba7e8"), (.deferred, "#f3ad5c"), (.rejected, "#e07d74"),
    ]
    public static let returnColor = "#7d5ba6"
    public static let cameBackColor = "#2a8f8f"
    public static let neverCameBackColor = "#a64d79"
    public static let waitingNetworkColor = "#b8860b"
    public static let waitingSenderColor = "#8b5a2b"

    /// Every chart colour by a name, for the screenshot check.
    public static var chartColors: [String: String] {
        var out: [String: String] = [:]
        for (s, c) in hourly { out["hourly \(s.rawValue)"] = c }
        for (s, c) in daily { out["daily \(s.rawValue)"] = c }
        out["return delay"] = returnColor
        out["came back"] = cameBackColor
        out["never came back"] = neverCameBackColor
        out["waiting networks"] = waitingNetworkColor
        out["waiting senders"] = waitingSenderColor
        return out
    }

    /// Text made safe for HTML element content and quoted attribute values:
    /// markup characters become entities, control characters U+FFFD,
    /// bidirectional controls the visible text `<U+202E>`, and
    /// anything longer than `limit` characters is cut.
    public static func html(_ text: String, limit: Int = 160) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        var n = 0
        for scalar in text.unicodeScalars {
            if n == limit {
                out += "…"
                break
            }
            n += 1
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028
                    || scalar.value == 0x2029 {
                    out += "\u{FFFD}"
                } else if scalar.isBidiControl {
                    out += "&lt;U+" + String(scalar.value, radix: 16, uppercase: true) + "&gt;"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    // MARK: Figures from the history

    /// Sums of the history by (hour, name).
    struct Sums {
        var byKey: [HistoryKey: Int64] = [:]
        init(_ history: [HistoryCount]) {
            for h in history { byKey[HistoryKey(hour: h.hour, name: h.name), default: 0] += h.count }
        }
        func callAsFunction(_ hour: Int64, _ name: String) -> Int64 { byKey[HistoryKey(hour: hour, name: name)] ?? 0 }
    }

    /// What greylisting blocked: of the triplets first deferred in hours
    /// whose retry window is over, how many came back.
    public struct Blocked: Equatable, Sendable {
        public var deferred: Int64
        public var cameBack: Int64
        public var fromHour: Int64
        public var toHour: Int64
        public var neverCameBack: Int64 { deferred - cameBack }
    }

    public static func blocked(_ d: DashboardData) -> Blocked {
        let sums = Sums(d.history)
        // From the first hour with new triplets in the days shown.
        let earliest = d.history.lazy.filter { $0.name == DecisionHistory.newTriplets }.map(\.hour).min() ?? 0
        let from = max((d.now - Int64(d.days) * 86_400) / 3600, earliest)
        // The last hour all of whose triplets are past their retry window.
        let to = (d.now - d.retryWindow) / 3600 - 1
        var deferred: Int64 = 0, back: Int64 = 0
        if to >= from {
            for h in from...to {
                let n = sums(h, DecisionHistory.newTriplets)
                deferred += n
                back += min(n, sums(h, DecisionHistory.returned))
            }
        }
        return Blocked(deferred: deferred, cameBack: back, fromHour: from, toHour: to)
    }

    /// First passes after a delay in the last `days` days, by bucket
    /// (upper bound in seconds, nil for the last one).
    public static func returnDelays(_ d: DashboardData) -> [(bound: Int64?, count: Int64)] {
        let from = (d.now - Int64(d.days) * 86_400) / 3600
        var counts: [String: Int64] = [:]
        for h in d.history where h.hour >= from && h.name.hasPrefix("return:") { counts[h.name, default: 0] += h.count }
        return DecisionHistory.returnBounds.map { (Optional($0), counts["return:\($0)"] ?? 0) }
            + [(nil, counts["return:inf"] ?? 0)]
    }

    // MARK: Rendering

    /// The two numbers `greylag replay` reports, for the last 24 hours of
    /// live traffic (`LiveCost`).
    static func costSection(_ c: LiveCost, _ d: DashboardData) -> String {
        var body = "<p>"
        if let share = c.blockedShare {
            body += "Blocked: of the \(c.deferredNew) new triplet(s) deferred from "
                + "\(html(localTime(c.blockedFromHour * 3600, d.utcOffset, "yyyy-MM-dd HH:00"))) to "
                + "\(html(localTime((c.blockedToHour + 1) * 3600, d.utcOffset, "yyyy-MM-dd HH:00"))) (the last 24 hours "
                + "whose retry window is over), <strong>\(percent(share)) never came back</strong>. "
        } else {
            body += "Blocked: nothing to count yet (no new triplet deferred in the 24 hours before the retry window). "
        }
        if c.delayedPasses > 0, let median = c.delayMedian, let p90 = c.delayP90, let max = c.delayMax {
            body += "Delay: the \(c.delayedPasses) triplet(s) that passed after a delay in the last 24 hours waited "
                + "<strong>\(DurationText.format(median))</strong> (median), \(DurationText.format(p90)) (p90), "
                + "\(DurationText.format(max)) at most."
        } else {
            body += "Delay: no triplet passed after a delay in the last 24 hours (since the daemon started)."
        }
        return section("The cost of greylisting, last 24 hours", id: "cost", legend: [], body: body + "</p>")
    }

    /// `releaseSecret`: the form secret of the release buttons next to the
    /// waiting networks and senders; nil shows no buttons (no token).
    public static func render(_ d: DashboardData, releaseSecret: String? = nil) -> String {
        let sums = Sums(d.history)
        let hourNow = d.now / 3600
        var page = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta http-equiv="refresh" content="60">
            <title>greylag on \(html(d.host))</title>
            <style>\(style)</style></head><body>
            <header><h1>greylag on \(html(d.host))</h1>
            <p class="sub">greylag \(html(d.version)) · \(html(localTime(d.now, d.utcOffset, "yyyy-MM-dd HH:mm:ss"))) \
            (UTC\(offsetText(d.utcOffset))) · delay \(DurationText.format(d.delay)) · retry window \
            \(DurationText.format(d.retryWindow)) · refreshes every minute</p></header>

            """
        if d.dryRun {
            page += "<p class=\"banner\">Dry run: nothing is deferred; the counts show what would have been.</p>\n"
        }
        if let why = d.storeUnavailable {
            page += "<p class=\"banner bad\">The store could not be opened: \(html(why, limit: 300)). Decisions that "
                + "need it get the failure mode until it opens; greylag retries by itself. To start afresh, move the "
                + "store file aside with its -wal and -shm files (see “Recovering a broken store” in docs/store.md).</p>\n"
        } else if d.degraded {
            page += "<p class=\"banner bad\">The store does not answer: decisions that need it get the failure mode.</p>\n"
        }
        if let e = d.storeError, d.storeUnavailable == nil {
            page += "<p class=\"banner bad\">Cannot read the store: \(html(e, limit: 300)). Store figures are missing below.</p>\n"
        }

        // Tiles: the last 24 hours and the store now.
        page += "<section class=\"tiles\">"
        for (series, color) in hourly.reversed() {
            let n = ((hourNow - 23)...hourNow).reduce(Int64(0)) { $0 + sums($1, series.rawValue) }
            page += tile(label: "\(series.rawValue), 24 h", value: n, color: color)
        }
        if let c = d.counts {
            page += tile(label: "waiting for a retry", value: c.pending, color: nil)
            page += tile(label: "passed, remembered", value: c.passed, color: nil)
            page += tile(label: "auto-whitelisted networks", value: c.clients, color: nil)
        }
        page += "</section>\n"
        if let c = d.cost { page += costSection(c, d) }

        // Decisions per hour, then per day.
        let hourBars = ((hourNow - 47)...hourNow).map { h in
            Bar(label: localTime(h * 3600, d.utcOffset, "HH:mm"),
                tip: localTime(h * 3600, d.utcOffset, "yyyy-MM-dd HH:00"),
                values: hourly.map { sums(h, $0.series.rawValue) })
        }
        page += section("Decisions per hour, last 48 hours", id: "hourly",
                        legend: hourly.map { ($0.series.rawValue, $0.color) },
                        body: stackedBars(hourBars, series: hourly.map { ($0.series.rawValue, $0.color) }, labelEvery: 6, first: 2,
                                          label: "decisions per hour"))
        let offset = Int64(d.utcOffset)
        let today = floorDiv(d.now + offset, 86_400)
        var dayTotals: [Int64: [Int64]] = [:]
        for (key, count) in sums.byKey {
            guard let i = daily.firstIndex(where: { $0.series.rawValue == key.name }) else { continue }
            let day = floorDiv(key.hour * 3600 + offset, 86_400)
            dayTotals[day, default: Array(repeating: 0, count: daily.count)][i] += count
        }
        let dayBars = ((today - Int64(d.days) + 1)...today).map { day in
            Bar(label: localTime(day * 86_400 - offset, d.utcOffset, "MM-dd"),
                tip: localTime(day * 86_400 - offset, d.utcOffset, "yyyy-MM-dd (EEE)"),
                values: dayTotals[day] ?? Array(repeating: 0, count: daily.count))
        }
        page += section("Decisions per day, last \(d.days) days", id: "daily",
                        legend: daily.map { ($0.series.rawValue, $0.color) },
                        body: stackedBars(dayBars, series: daily.map { ($0.series.rawValue, $0.color) }, labelEvery: 5, first: (d.days - 1) % 5,
                                          label: "decisions per day"))

        // The delay real mail paid.
        let delays = returnDelays(d)
        let returnedTotal = delays.reduce(Int64(0)) { $0 + $1.count }
        var delayText = "<p>How long senders took to come back after their first deferral, for the \(returnedTotal) "
            + "triplet(s) that passed after a delay in the last \(d.days) days: the delay greylisting costs real mail.</p>"
        if returnedTotal > 0 {
            delayText += "<p>Half were back within \(percentile(delays, 0.5)); nine in ten within "
                + "\(percentile(delays, 0.9)).</p>"
        }
        let delayBars = delays.map { b in
            Bar(label: b.bound.map { "≤" + DurationText.format($0) } ?? ">" + DurationText.format(DecisionHistory.returnBounds.last!),
                tip: b.bound.map { "back within \(DurationText.format($0))" } ?? "back after more than \(DurationText.format(DecisionHistory.returnBounds.last!))",
                values: [b.count])
        }
        page += section("Return delay of legitimate senders", id: "returns", legend: [],
                        body: delayText + stackedBars(delayBars, series: [("", returnColor)], labelEvery: 1, first: 0,
                                                      label: "senders by return delay"))

        // What greylisting blocked.
        let b = blocked(d)
        var blockedBody: String
        if b.deferred == 0 {
            blockedBody = "<p class=\"empty\">Nothing to show yet: new triplets are counted here once their retry "
                + "window (\(DurationText.format(d.retryWindow))) is over.</p>"
        } else {
            let share = Double(b.neverCameBack) / Double(b.deferred)
            blockedBody = "<p>Of the \(b.deferred) new triplet(s) deferred from "
                + "\(html(localTime(b.fromHour * 3600, d.utcOffset, "yyyy-MM-dd HH:00"))) to "
                + "\(html(localTime((b.toHour + 1) * 3600, d.utcOffset, "yyyy-MM-dd HH:00"))), <strong>\(b.neverCameBack) "
                + "(\(percent(share))) never came back</strong>: that is the mail greylisting stopped. "
                + "\(b.cameBack) came back and passed. Triplets first seen since are still within their retry window.</p>"
            blockedBody += shareBar(back: b.cameBack, never: b.neverCameBack)
        }
        page += section("Deferred triplets that never came back", id: "blocked",
                        legend: b.deferred == 0 ? [] : [("came back", cameBackColor), ("never came back", neverCameBackColor)],
                        body: blockedBody)

        // Who is waiting now.
        page += "<div class=\"pair\">"
        page += "<a id=\"waiting\"></a>"
        page += section("Networks waiting now", id: "waiting-networks", legend: [],
                        body: waitingTable(d.waitingNetworks, heading: "client network", color: waitingNetworkColor,
                                           now: d.now, missing: d.counts == nil, release: releaseSecret))
        page += section("Senders waiting now", id: "waiting-senders", legend: [],
                        body: waitingTable(d.waitingSenders, heading: "sender", color: waitingSenderColor,
                                           now: d.now, missing: d.counts == nil, sender: true, release: releaseSecret))
        page += "</div>\n"

        page += section("Recent decisions on this host", id: "recent", legend: [], body: recentTable(d))
        page += "<footer>Figures per hour and day come from the store's history (all hosts sharing it); recent "
            + "decisions are this daemon's. JSON: <a href=\"/api/dashboard\">/api/dashboard</a> · "
            + "<a href=\"/metrics\">/metrics</a></footer>\n</body></html>\n"
        return page
    }

    static let style = """
        body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1000px;padding:12px 20px;color:#222;background:#fafafa}
        h1{font-size:22px;margin:8px 0 0}h2{font-size:16px;margin:0 0 6px}.sub{color:#666;margin:2px 0 12px}
        section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;margin:12px 0}
        .tiles{display:flex;flex-wrap:wrap;gap:8px;background:none;border:0;padding:0}
        .tile{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px 12px;min-width:120px}
        .tile b{display:block;font-size:20px}.tile span{color:#666;font-size:12px}
        .legend span{display:inline-block;margin-right:14px;font-size:12px}
        .legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:baseline}
        .banner{background:#fff4d6;border:1px solid #e6c36a;padding:8px 12px;border-radius:6px}
        .banner.bad{background:#fde2e0;border-color:#e08a80}
        table{border-collapse:collapse;width:100%;font-size:12px}td,th{text-align:left;padding:3px 6px;border-bottom:1px solid #eee;vertical-align:top}
        td.addr{word-break:break-all}td.n{text-align:right;white-space:nowrap}
        .pair{display:grid;grid-template-columns:1fr 1fr;gap:12px}.pair section{margin:0}
        .defer{color:#b0600b}.reject{color:#b0281e}.pass{color:#23794a}.empty{color:#888}
        svg{display:block;max-width:100%;height:auto}svg text{font:11px system-ui,sans-serif;fill:#555}
        footer{color:#888;font-size:12px;margin:16px 0}
        """

    struct Bar {
        var label: String
        var tip: String
        var values: [Int64]
    }

    static func section(_ title: String, id: String, legend: [(String, String)], body: String) -> String {
        var out = "<section id=\"\(id)\"><h2>\(html(title))</h2>"
        if !legend.isEmpty {
            out += "<div class=\"legend\">" + legend.map { "<span><i style=\"background:\($0.1)\"></i>\(html($0.0))</span>" }
                .joined() + "</div>"
        }
        return out + body + "</section>\n"
    }

    static func tile(label: String, value: Int64, color: String?) -> String {
        let mark = color.map { "<i style=\"display:inline-block;width:8px;height:8px;background:\($0);margin-right:4px\"></i>" } ?? ""
        return "<div class=\"tile\"><b>\(value)</b><span>\(mark)\(html(label))</span></div>"
    }

    /// A bar chart, bars stacked from the first value up (the value of
    /// `series[j]` drawn in its colour and named in its tooltip), with a y
    /// axis from 0 to a round maximum and every `labelEvery`th bar labelled
    /// starting at `first`.
    static func stackedBars(_ bars: [Bar], series: [(name: String, color: String)], labelEvery: Int, first: Int,
                            label: String) -> String {
        let width = 960, top = 10, plot = 180, left = 52, right = 8
        let height = top + plot + 22
        let peak = bars.map { $0.values.reduce(0, +) }.max() ?? 0
        let scale = roundedUp(max(peak, 1))
        var svg = "<svg viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" role=\"img\" "
            + "aria-label=\"\(html(label))\" shape-rendering=\"crispEdges\">"
        for step in 0...2 {
            let value = scale * Int64(step) / 2
            let y = top + plot - plot * step / 2
            svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y)\" y2=\"\(y)\" stroke=\"#e3e3e3\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(compact(value))</text>"
        }
        let slot = Double(width - left - right) / Double(max(bars.count, 1))
        let gap = slot >= 8 ? 2 : 0
        for (i, bar) in bars.enumerated() {
            let x = left + Int(Double(i) * slot)
            let w = max(1, left + Int(Double(i + 1) * slot) - x - gap)
            var base = top + plot
            for (j, value) in bar.values.enumerated() where value > 0 {
                let h = max(1, Int((Double(value) / Double(scale) * Double(plot)).rounded()))
                base -= h
                let name = series[j].name.isEmpty ? "" : " " + series[j].name
                svg += "<rect x=\"\(x)\" y=\"\(base)\" width=\"\(w)\" height=\"\(h)\" fill=\"\(series[j].color)\">"
                    + "<title>\(html(bar.tip)):\(html(name)) \(value)</title></rect>"
            }
            if i % labelEvery == first % labelEvery {
                svg += "<text x=\"\(x + w / 2)\" y=\"\(top + plot + 15)\" text-anchor=\"middle\">\(html(bar.label))</text>"
            }
        }
        if peak == 0 {
            svg += "<text x=\"\(width / 2)\" y=\"\(top + plot / 2)\" text-anchor=\"middle\">no decisions counted yet</text>"
        }
        return svg + "</svg>"
    }

    /// One bar split in two: came back, never came back.
    static func shareBar(back: Int64, never: Int64) -> String {
        let width = 960
        let total = max(back + never, 1)
        let w = Int((Double(back) / Double(total) * Double(width)).rounded())
        return "<svg viewBox=\"0 0 \(width) 34\" width=\"\(width)\" height=\"34\" role=\"img\" "
            + "aria-label=\"share of deferred triplets that came back\" shape-rendering=\"crispEdges\">"
            + (w > 0 ? "<rect x=\"0\" y=\"4\" width=\"\(w)\" height=\"26\" fill=\"\(cameBackColor)\"><title>came back: \(back)</title></rect>" : "")
            + (w < width ? "<rect x=\"\(w)\" y=\"4\" width=\"\(width - w)\" height=\"26\" fill=\"\(neverCameBackColor)\"><title>never came back: \(never)</title></rect>" : "")
            + "</svg>"
    }

    static func waitingTable(_ groups: [WaitingGroup], heading: String, color: String, now: Int64, missing: Bool,
                             sender: Bool = false, release: String? = nil) -> String {
        if missing { return "<p class=\"empty\">The store did not answer.</p>" }
        if groups.isEmpty { return "<p class=\"empty\">No deferred triplet is waiting.</p>" }
        let peak = max(groups.map(\.triplets).max() ?? 1, 1)
        var out = "<table><tr><th>\(html(heading))</th><th></th><th>triplets</th><th>attempts</th><th>waiting</th>"
            + (release == nil ? "" : "<th></th>") + "</tr>"
        for g in groups {
            // The whole value goes into the form (not the cut one shown),
            // attribute-escaped; the button lets all its waiting triplets through.
            let button = release.map { secret in
                "<td><form class=\"release\" method=\"post\" action=\"/dashboard/release\">"
                    + "<input type=\"hidden\" name=\"field\" value=\"\(sender ? "sender" : "network")\">"
                    + "<input type=\"hidden\" name=\"value\" value=\"\(html(sender && g.key.isEmpty ? "<>" : g.key, limit: 2048))\">"
                    + "<input type=\"hidden\" name=\"secret\" value=\"\(secret)\">"
                    + "<button type=\"submit\" title=\"let its waiting triplets pass at their next retry\">release</button></form></td>"
            } ?? ""
            let w = max(2, Int(Double(g.triplets) / Double(peak) * 120))
            let key = sender && g.key.isEmpty ? "<> (bounce)" : g.key
            out += "<tr><td class=\"addr\">\(html(key))</td>"
                + "<td><svg width=\"120\" height=\"12\" shape-rendering=\"crispEdges\"><rect width=\"\(w)\" height=\"12\" "
                + "fill=\"\(color)\"/></svg></td><td class=\"n\">\(g.triplets)</td><td class=\"n\">\(g.attempts)</td>"
                + "<td class=\"n\">\(DurationText.format(max(0, now.saturatingSubtract(g.oldestFirstSeen))))</td>"
                + button + "</tr>"
        }
        return out + "</table>"
    }

    // MARK: Release buttons

    /// A new random secret for the release forms: 32 hex digits.
    static func newFormSecret() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let hex = String(g.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// Compares two secrets in time independent of where they differ.
    static func sameSecret(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0 && !x.isEmpty
    }

    /// What a release button posts: which group (a waiting network or
    /// sender), its value and the form secret.
    struct ReleaseForm: Equatable {
        enum Field: String { case network, sender }
        var field: Field
        var value: String
        var secret: String

        /// Parses `field=...&value=...&secret=...`; nil when a field is
        /// missing, repeated or unknown, or the encoding is broken.
        init?(urlEncoded body: String) {
            var fields: [String: String] = [:]
            for pair in body.split(separator: "&", omittingEmptySubsequences: true) {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2,
                      let name = String(parts[0]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding,
                      let value = String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding,
                      ["field", "value", "secret"].contains(name), fields[name] == nil else { return nil }
                fields[name] = value
            }
            guard let f = fields["field"].flatMap(Field.init(rawValue:)), let v = fields["value"], !v.isEmpty,
                  let s = fields["secret"] else { return nil }
            field = f
            value = v
            secret = s
        }
    }

    /// The page a release answers with (shown only when no redirect is followed, or it failed).
    static func releaseAnswer(_ r: AdminResponse) -> String {
        let text = r.ok ? (r.message ?? "released") : (r.error ?? "failed")
        return "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>greylag: release</title></head>"
            + "<body><p>\(html(text, limit: 2000))</p><p><a href=\"/dashboard#waiting\">back to the dashboard</a></p></body></html>\n"
    }

    static func recentTable(_ d: DashboardData) -> String {
        if d.recent.isEmpty { return "<p class=\"empty\">No decision since the daemon started.</p>" }
        var out = "<table><tr><th>time</th><th>verdict</th><th>reason</th><th>client</th><th>sender</th>"
            + "<th>recipient</th><th>via</th><th>detail</th></tr>"
        for r in d.recent {
            let cls = r.action == "pass" ? "pass" : r.action == "reject" ? "reject" : "defer"
            var detail = ""
            if let t = r.retryIn { detail = "retry in \(DurationText.format(t))" }
            if let t = r.delayed { detail = "waited \(DurationText.format(t))" }
            if !r.zones.isEmpty { detail += (detail.isEmpty ? "" : "; ") + "zones " + r.zones.joined(separator: ", ") }
            if let spf = r.spf { detail += (detail.isEmpty ? "" : "; ") + "SPF " + spf }
            out += "<tr><td class=\"n\">\(html(localTime(r.time, d.utcOffset, "HH:mm:ss")))</td>"
                + "<td class=\"\(cls)\">\(html(r.action))</td><td>\(html(r.reason))</td>"
                + "<td class=\"addr\">\(html(r.client))</td><td class=\"addr\">\(html("<" + r.sender + ">"))</td>"
                + "<td class=\"addr\">\(html("<" + r.recipient + ">"))</td><td>\(html(r.via))</td><td>\(html(detail))</td></tr>"
        }
        return out + "</table>"
    }

    // MARK: Small helpers

    /// The smallest 1, 2 or 5 times a power of ten that is at least `n`.
    static func roundedUp(_ n: Int64) -> Int64 {
        var base: Int64 = 1
        while true {
            for m: Int64 in [1, 2, 5] where base * m >= n { return base * m }
            base *= 10
        }
    }

    static func compact(_ n: Int64) -> String {
        if n >= 1_000_000 { return trimmed(Double(n) / 1_000_000) + "M" }
        if n >= 1_000 { return trimmed(Double(n) / 1_000) + "k" }
        return "\(n)"
    }

    static func trimmed(_ x: Double) -> String {
        let s = String(format: "%.1f", x)
        return s.hasSuffix(".0") ? String(s.dropLast(2)) : s
    }

    static func percent(_ share: Double) -> String {
        String(format: "%.1f%%", share * 100)
    }

    /// The upper bound of the bucket where the cumulative share reaches `q`.
    static func percentile(_ buckets: [(bound: Int64?, count: Int64)], _ q: Double) -> String {
        let total = buckets.reduce(Int64(0)) { $0 + $1.count }
        var seen: Int64 = 0
        for b in buckets {
            seen += b.count
            if Double(seen) >= q * Double(total) {
                return b.bound.map { DurationText.format($0) }
                    ?? "more than " + DurationText.format(DecisionHistory.returnBounds.last!)
            }
        }
        return "?"
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    static func offsetText(_ seconds: Int) -> String {
        let sign = seconds < 0 ? "-" : "+"
        let m = abs(seconds) / 60
        return sign + String(format: "%02d:%02d", m / 60, m % 60)
    }

    /// `t` in the daemon's local time, formatted with `pattern`.
    static func localTime(_ t: Int64, _ offset: Int, _ pattern: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: offset)
        formatter.dateFormat = pattern
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(t)))
    }
}
