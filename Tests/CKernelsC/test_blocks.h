// Random valid blocks and a small deterministic RNG for the C kernel tests.
#pragma once

#include <stdint.h>
#include <string.h>

// splitmix64
static inline uint64_t roost_test_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// uniform in [0, 1)
static inline float roost_test_rng_unit(uint64_t *s) {
    return (float)(roost_test_rng_next(s) >> 40) * (1.0f / 16777216.0f);
}

// uniform in [-1, 1)
static inline float roost_test_rng_sym(uint64_t *s) { return 2.0f * roost_test_rng_unit(s) - 1.0f; }

// Random bytes.
static inline void roost_test_rng_fill(uint64_t *s, void *p, size_t n) {
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        if ((i & 7) == 0) {
            const uint64_t v = roost_test_rng_next(s);
            const size_t k = n - i < 8 ? n - i : 8;
            memcpy(b + i, &v, k);
        }
    }
}

// A finite scale of magnitude 2^[lo_exp, hi_exp), random sign when signed_ is set.
static inline float roost_test_rng_scale(uint64_t *s, int lo_exp, int hi_exp, int signed_) {
    const float e = (float)lo_exp + roost_test_rng_unit(s) * (float)(hi_exp - lo_exp);
    float v = exp2f(e);
    if (signed_ && (roost_test_rng_next(s) & 1)) v = -v;
    return v;
}

// Fill one valid random block of `type` (one element for F32/F16/BF16).
// Returns 1 when the type is handled by that file, 0 otherwise.
int roost_test_random_block_legacy(int32_t type, void *block, uint64_t *rng);  // test_legacy_blocks.c
int roost_test_random_block_kquants(int32_t type, void *block, uint64_t *rng); // test_kquant_blocks.c

// Counts a check (test_main.c); prints the message when it fails.
void roost_test_check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// The WKV kernel tests of one path (test_wkv.c).
struct roost_kernels;
void roost_test_wkv(const struct roost_kernels *k, const struct roost_kernels *ref, int is_ref, uint64_t *rng);

// The RoPE and attention kernel tests of one path (test_attn.c).
void roost_test_attn(const struct roost_kernels *k, const struct roost_kernels *ref, int is_ref, uint64_t *rng);
