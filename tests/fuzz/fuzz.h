/*
 * fuzz.h - shared by the libFuzzer targets in tests/fuzz/.
 *
 * Each target is one C file defining LLVMFuzzerTestOneInput (and maybe
 * LLVMFuzzerInitialize); `make fuzz` links it with src/ *.c (except main.c)
 * built with clang -fsanitize=fuzzer,address,undefined. A broken invariant
 * is reported with FUZZ_CHECK, which prints where and why, then aborts so
 * that libFuzzer saves the input as a crash.
 */
#ifndef INFERGATE_FUZZ_H
#define INFERGATE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n  ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif /* INFERGATE_FUZZ_H */
