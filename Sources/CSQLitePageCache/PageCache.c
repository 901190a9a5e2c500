// A wrapper around SQLite's default page cache (pcache1) that makes the
// truncate at the end of every write transaction cheap.
//
// Why: when a B-tree page splits, balance_nonroot() puts the new pages in
// ascending order by renumbering them, moving one page through a temporary
// number just past the lock byte page (PENDING_BYTE / page size + 1:
// 524,289 with 2 KiB pages). pcache1 remembers the largest number it ever
// held (iMaxKey), and at the end of the transaction the pager truncates
// the cache to the database size. With iMaxKey that far above the size,
// pcache1TruncateUnsafe() walks every hash bucket and every cached page,
// although the page went back to a real number long before: with a store
// of a million records it was a sixth of the daemon's CPU.
//
// The wrapper keeps its own bound of the page numbers that can be in the
// cache: the largest number fetched, and the few numbers pages were moved
// to above it (the temporary ones), dropped again when the page moves on.
// A truncate whose limit is above all of them has nothing to drop and
// returns at once; any other is passed to pcache1 unchanged. Every other
// method is pcache1's own.
#include <sqlite3.h>
#include <stdatomic.h>
#include <stddef.h>

enum { HIGH_SLOTS = 8 };

typedef struct Cache {
    sqlite3_pcache *inner;
    // No page numbered above this can be cached, except those in high[].
    unsigned int maxKey;
    // Numbers above maxKey that a page was moved to and may still hold; 0: free.
    unsigned int high[HIGH_SLOTS];
} Cache;

static sqlite3_pcache_methods2 base;
static atomic_int installed;
static atomic_ullong skipped, passed;

static sqlite3_pcache *wrapCreate(int szPage, int szExtra, int bPurgeable) {
    Cache *c = sqlite3_malloc(sizeof(Cache));
    if (!c) return NULL;
    c->inner = base.xCreate(szPage, szExtra, bPurgeable);
    if (!c->inner) {
        sqlite3_free(c);
        return NULL;
    }
    c->maxKey = 0;
    for (int i = 0; i < HIGH_SLOTS; i++) c->high[i] = 0;
    return (sqlite3_pcache *)c;
}

static void wrapCachesize(sqlite3_pcache *p, int nCachesize) {
    base.xCachesize(((Cache *)p)->inner, nCachesize);
}

static int wrapPagecount(sqlite3_pcache *p) {
    return base.xPagecount(((Cache *)p)->inner);
}

static sqlite3_pcache_page *wrapFetch(sqlite3_pcache *p, unsigned int key, int createFlag) {
    Cache *c = (Cache *)p;
    sqlite3_pcache_page *page = base.xFetch(c->inner, key, createFlag);
    if (page && key > c->maxKey) {
        int isHigh = 0;
        for (int i = 0; i < HIGH_SLOTS; i++) isHigh |= c->high[i] == key;
        if (!isHigh) c->maxKey = key;
    }
    return page;
}

static void wrapUnpin(sqlite3_pcache *p, sqlite3_pcache_page *page, int discard) {
    base.xUnpin(((Cache *)p)->inner, page, discard);
}

static void wrapRekey(sqlite3_pcache *p, sqlite3_pcache_page *page, unsigned int oldKey, unsigned int newKey) {
    Cache *c = (Cache *)p;
    base.xRekey(c->inner, page, oldKey, newKey);
    for (int i = 0; i < HIGH_SLOTS; i++) {
        if (c->high[i] == oldKey) c->high[i] = 0;
    }
    if (newKey <= c->maxKey) return;
    for (int i = 0; i < HIGH_SLOTS; i++) {
        if (c->high[i] == 0) {
            c->high[i] = newKey;
            return;
        }
    }
    c->maxKey = newKey;  // no slot left: the plain bound, as pcache1 keeps it
}

static void wrapTruncate(sqlite3_pcache *p, unsigned int iLimit) {
    Cache *c = (Cache *)p;
    int needed = iLimit <= c->maxKey;
    for (int i = 0; i < HIGH_SLOTS; i++) needed |= c->high[i] != 0 && c->high[i] >= iLimit;
    if (!needed) {
        atomic_fetch_add_explicit(&skipped, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&passed, 1, memory_order_relaxed);
    base.xTruncate(c->inner, iLimit);
    if (iLimit == 0) {
        c->maxKey = 0;
    } else if (c->maxKey >= iLimit) {
        c->maxKey = iLimit - 1;
    }
    for (int i = 0; i < HIGH_SLOTS; i++) {
        if (c->high[i] >= iLimit) c->high[i] = 0;
    }
}

static void wrapDestroy(sqlite3_pcache *p) {
    Cache *c = (Cache *)p;
    base.xDestroy(c->inner);
    sqlite3_free(c);
}

static void wrapShrink(sqlite3_pcache *p) {
    base.xShrink(((Cache *)p)->inner);
}

int greylag_install_page_cache(void) {
    if (atomic_load(&installed)) return SQLITE_OK;
    int rc = sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &base);
    if (rc != SQLITE_OK) return rc;
    if (!base.xCreate || !base.xTruncate || !base.xRekey) return SQLITE_ERROR;
    static sqlite3_pcache_methods2 wrapped;
    wrapped = base;  // iVersion, pArg, xInit and xShutdown stay pcache1's
    wrapped.xCreate = wrapCreate;
    wrapped.xCachesize = wrapCachesize;
    wrapped.xPagecount = wrapPagecount;
    wrapped.xFetch = wrapFetch;
    wrapped.xUnpin = wrapUnpin;
    wrapped.xRekey = wrapRekey;
    wrapped.xTruncate = wrapTruncate;
    wrapped.xDestroy = wrapDestroy;
    wrapped.xShrink = wrapShrink;
    rc = sqlite3_config(SQLITE_CONFIG_PCACHE2, &wrapped);
    if (rc == SQLITE_OK) atomic_store(&installed, 1);
    return rc;
}

int greylag_page_cache_installed(void) { return atomic_load(&installed); }

unsigned long long greylag_page_cache_skipped_truncates(void) { return atomic_load(&skipped); }

unsigned long long greylag_page_cache_passed_truncates(void) { return atomic_load(&passed); }
