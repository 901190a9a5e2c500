#ifndef GREYLAG_CFUZZDRIVER_H
#define GREYLAG_CFUZZDRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver, linked in by -sanitize=fuzzer. SwiftPM names an
/// executable's entry point after the target and links `main` to it, so the
/// fuzz build calls the driver from that entry point instead of using
/// libFuzzer's own main.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
