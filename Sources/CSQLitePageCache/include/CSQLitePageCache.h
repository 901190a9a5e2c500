#ifndef GREYLAG_CSQLITEPAGECACHE_H
#define GREYLAG_CSQLITEPAGECACHE_H

/// Puts SQLite's own page cache behind a thin wrapper whose truncate skips
/// the scan when no page at or above the limit can be cached (see the .c
/// file). Must run before SQLite is first used in the process; returns 0
/// when installed, else SQLite's error code (e.g. 21, SQLITE_MISUSE, when
/// SQLite was already initialised). Safe to call more than once.
int greylag_install_page_cache(void);

/// 1 when the wrapper is in force.
int greylag_page_cache_installed(void);

/// How many truncates the wrapper answered without the scan, and how many
/// it passed on (for tests and diagnosis).
unsigned long long greylag_page_cache_skipped_truncates(void);
unsigned long long greylag_page_cache_passed_truncates(void);

#endif
