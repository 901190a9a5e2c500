import CSQLitePageCache

/// SQLite's page cache with a cheap end-of-transaction truncate
/// (Sources/CSQLitePageCache/PageCache.c): without it, every commit after a
/// B-tree page split scanned the whole page cache.
public enum SQLitePageCache {
    /// Installs the wrapper. Only works before SQLite is first used in the
    /// process (the daemon calls it first thing); returns nil when installed,
    /// else why not. Decisions are right either way, only slower without.
    @discardableResult
    public static func install() -> String? {
        let rc = greylag_install_page_cache()
        return rc == 0 ? nil : "SQLite refused the page cache wrapper (code \(rc)): it was already in use"
    }

    /// Whether the wrapper is in force.
    public static var isInstalled: Bool { greylag_page_cache_installed() != 0 }

    /// Truncates answered without a scan, and truncates passed on to SQLite's cache.
    public static var truncates: (skipped: UInt64, passed: UInt64) {
        (greylag_page_cache_skipped_truncates(), greylag_page_cache_passed_truncates())
    }
}
