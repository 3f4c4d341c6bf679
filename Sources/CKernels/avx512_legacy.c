// AVX-512 (F/BW/VL) + VNNI kernels: legacy quants (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 weights
// with Q8_0 / Q8_1 activations) and float weights (F32, F16, BF16 with F32 activations).
//
// Quantized dot products are bitwise the ref's (ref_legacy.c): per 32-element block the
// exact integer sum, then in float, block after block,
//   acc = acc + ((float)isum * (dw * da) [+ mw * sa])
// each operation rounded separately. So they do not depend on the path, the tile shape
// (4 rows x 1 column in gemv, 4 rows x 4/3/2 columns in gemm, 1 row x C columns for row
// remainders) or the row split.
//
// Integer part: two 32-element blocks per 512-bit register. The integer dot of a block
// is done by VNNI (vpdpbusd: unsigned bytes x signed bytes, 4 products summed into each
// int32 lane) with the weights as unsigned bytes:
//   Q4_1 / Q5_1: the weight nibbles are unsigned already;
//   Q4_0 / Q5_0 / Q8_0: the weights are stored offset (q + 8, q + 16, q ^ 0x80 = q + 128)
//   and the offset times the activation block sum is subtracted: the dpbusd accumulator
//   starts at -offset * sum(a), computed once per activation block by a dpbusd of the
//   constant offset bytes with the activations and shared by every weight row.
// All integer sums are exact, so there is NO restriction on the values: activations
// (and Q8_0 weights) may be -128.
// Float part: the lanes of 4 rows x 2 blocks are reduced together to the 8 exact block
// sums (unpack/add tree, reduce4x2), the 4 rows' scales of the 2 blocks are converted
// by one vcvtph2ps, and the ref's combine runs in the 4 lanes of an SSE accumulator per
// column, block A then block B; single rows run the same operations in scalar code.
// An odd last block runs the same step with block B = block A, its result dropped.
#include "internal.h"

// The quantized combine must round each float operation separately, as the ref does.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#if defined(__x86_64__)

#include <immintrin.h>

// The tile loops over rows / columns must be unrolled so that the accumulators live in
// registers (gcc -O2 does not unroll them by itself).
#define UNROLL _Pragma("GCC unroll 4")

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INLINE \
    static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE float hsum16(__m512 v) {
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return hsum8(_mm256_add_ps(_mm512_castps512_ps256(v), hi));
}

INLINE float h2f(roost_half h) { return _cvtsh_ss(h); }

INLINE uint32_t load_u32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE uint16_t load_u16(const void *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
INLINE __m128i load128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

// ---- per-type layout ----------------------------------------------------------------

INLINE int has_min(const int type) { return type == ROOST_TYPE_Q4_1 || type == ROOST_TYPE_Q5_1; }

// Q4/Q5 registers hold two blocks in "split" order, 128-bit lanes
//   [block 0 elements 0..15, block 1 elements 0..15, block 0 16..31, block 1 16..31]
// (what the nibble unpacking gives cheaply); Q8_0 keeps the natural order
//   [block 0 elements 0..31, block 1 elements 0..31].
INLINE int split_order(const int type) { return type != ROOST_TYPE_Q8_0; }

// Offset added to the signed weights to make them unsigned bytes (0 for the _1 types).
INLINE int w_offset(const int type) {
    switch (type) {
    case ROOST_TYPE_Q4_0: return 8;
    case ROOST_TYPE_Q5_0: return 16;
    case ROOST_TYPE_Q8_0: return 128;
    default: return 0;
    }
}

INLINE size_t wblock_size(const int type) {
    switch (type) {
    case ROOST_TYPE_Q4_0: return sizeof(block_q4_0);
    case ROOST_TYPE_Q4_1: return sizeof(block_q4_1);
    case ROOST_TYPE_Q5_0: return sizeof(block_q5_0);
    case ROOST_TYPE_Q5_1: return sizeof(block_q5_1);
    default: return sizeof(block_q8_0);
    }
}

INLINE size_t qs_offset(const int type) {
    switch (type) {
    case ROOST_TYPE_Q4_0: return offsetof(block_q4_0, qs);
    case ROOST_TYPE_Q4_1: return offsetof(block_q4_1, qs);
    case ROOST_TYPE_Q5_0: return offsetof(block_q5_0, qs);
    case ROOST_TYPE_Q5_1: return offsetof(block_q5_1, qs);
    default: return offsetof(block_q8_0, qs);
    }
}

INLINE size_t qh_offset(const int type) {
    return type == ROOST_TYPE_Q5_0 ? offsetof(block_q5_0, qh) : offsetof(block_q5_1, qh);
}

INLINE int is_q5(const int type) { return type == ROOST_TYPE_Q5_0 || type == ROOST_TYPE_Q5_1; }
INLINE int is_q8(const int type) { return type == ROOST_TYPE_Q8_0; }

// ---- weights: two blocks -> 64 unsigned bytes (weight + offset), split order for Q4/Q5

INLINE __m512i load_w2(const int type, const char *b0, const char *b1) {
    if (is_q8(type)) {
        const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(load256(b0 + qs_offset(type))),
                                             load256(b1 + qs_offset(type)), 1);
        return _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80));
    }
    const __m256i t = _mm256_inserti128_si256(_mm256_castsi128_si256(load128(b0 + qs_offset(type))),
                                              load128(b1 + qs_offset(type)), 1);
    __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(t), _mm256_srli_epi16(t, 4), 1);
    q = _mm512_and_si512(q, _mm512_set1_epi8(0x0f));
    if (is_q5(type)) {
        // fifth bits: bit j of qh is element j; reorder the 16-bit halves to split order
        const uint64_t x = (uint64_t)load_u32(b0 + qh_offset(type)) | ((uint64_t)load_u32(b1 + qh_offset(type)) << 32);
        const uint64_t m = (x & 0xffff00000000ffffULL) | ((x >> 16) & 0x00000000ffff0000ULL) |
                           ((x << 16) & 0x0000ffff00000000ULL);
        q = _mm512_mask_add_epi8(q, (__mmask64)m, q, _mm512_set1_epi8(16));
    }
    return q;
}

// One block -> 32 unsigned bytes (weight + offset), natural order.
INLINE __m256i load_w1(const int type, const char *b) {
    if (is_q8(type)) return _mm256_xor_si256(load256(b + qs_offset(type)), _mm256_set1_epi8((char)0x80));
    const __m128i t = load128(b + qs_offset(type));
    __m256i q = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1),
                                 _mm256_set1_epi8(0x0f));
    if (is_q5(type)) q = _mm256_mask_add_epi8(q, (__mmask32)load_u32(b + qh_offset(type)), q, _mm256_set1_epi8(16));
    return q;
}

// Scales of two blocks as floats: _0 types [d0, d1, 0, 0], _1 types [d0, m0, d1, m1].
// Activations alike: Q8_0 [d0, d1, 0, 0], Q8_1 [d0, s0, d1, s1].
INLINE __m128 load_scales2(const int min, const char *b0, const char *b1) {
    if (min) return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)((uint64_t)load_u32(b0) | ((uint64_t)load_u32(b1) << 32))));
    return _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)load_u16(b0) | ((uint32_t)load_u16(b1) << 16))));
}

// Activation scales of blocks A, B (from load_scales2) spread to match weight_scales4:
// Q8_0 [da A x4, da B x4, ...], Q8_1 [da A x4, da B x4, sa A x4, sa B x4].
INLINE __m512 spread_ascales(const int min, __m128 s) {
    const __m512i idx = min ? _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 1, 1, 1, 1, 3, 3, 3, 3)
                            : _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(s));
}

// Weight scales of 4 rows (pa[r]: row r's block A; block B at pa[r] + bstep) as floats:
// _0 types [dw A rows 0..3, dw B rows 0..3, ...], _1 types [dw A, dw B, mw A, mw B].
// The 4-byte words at the block starts are d and m of the _1 types.
INLINE __m512 weight_scales4(const int min, const char *const *pa, size_t bstep) {
    // gathered in general registers: cheaper than vector inserts
    if (min) {
        const __m256i v = _mm256_setr_epi64x(
            (long long)((uint64_t)load_u32(pa[0]) | ((uint64_t)load_u32(pa[1]) << 32)),
            (long long)((uint64_t)load_u32(pa[2]) | ((uint64_t)load_u32(pa[3]) << 32)),
            (long long)((uint64_t)load_u32(pa[0] + bstep) | ((uint64_t)load_u32(pa[1] + bstep) << 32)),
            (long long)((uint64_t)load_u32(pa[2] + bstep) | ((uint64_t)load_u32(pa[3] + bstep) << 32)));
        return _mm512_cvtph_ps(
            _mm256_permutexvar_epi16(_mm256_setr_epi16(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15), v));
    }
    const __m128i v = _mm_set_epi64x(
        (long long)((uint64_t)load_u16(pa[0] + bstep) | ((uint64_t)load_u16(pa[1] + bstep) << 16) |
                    ((uint64_t)load_u16(pa[2] + bstep) << 32) | ((uint64_t)load_u16(pa[3] + bstep) << 48)),
        (long long)((uint64_t)load_u16(pa[0]) | ((uint64_t)load_u16(pa[1]) << 16) | ((uint64_t)load_u16(pa[2]) << 32) |
                    ((uint64_t)load_u16(pa[3]) << 48)));
    return _mm512_castps256_ps512(_mm256_cvtph_ps(v));
}

// Activations of two blocks, in the weight type's order.
INLINE __m512i load_a2(const int type, const char *a0, const char *a1) {
    const size_t off = has_min(type) ? offsetof(block_q8_1, qs) : offsetof(block_q8_0, qs);
    const __m512i x0 = _mm512_castsi256_si512(load256(a0 + off));
    const __m512i x1 = _mm512_castsi256_si512(load256(a1 + off));
    if (split_order(type)) return _mm512_permutex2var_epi64(x0, _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), x1);
    return _mm512_inserti64x4(x0, _mm512_castsi512_si256(x1), 1);
}

// Brings the 128-bit chunks of a two-block register to [block A, block B, block A,
// block B] (the split order has them so; the natural order is [A, A, B, B]).
INLINE __m512i chunks_ab(const int type, __m512i z) {
    return split_order(type) ? z : _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
}

// The int32 lanes of 4 rows' two-block dpbusd -> exact block sums
// [A row 0..3, B row 0..3].
INLINE __m256i reduce4x2(const int type, __m512i p0, __m512i p1, __m512i p2, __m512i p3) {
    // per 128-bit chunk: [p0 0+2, p1 0+2, p0 1+3, p1 1+3], then [p0, p1, p2, p3]
    const __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(p0, p1), _mm512_unpackhi_epi32(p0, p1));
    const __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(p2, p3), _mm512_unpackhi_epi32(p2, p3));
    const __m512i z = chunks_ab(type, _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23)));
    return _mm256_add_epi32(_mm512_castsi512_si256(z), _mm512_extracti64x4_epi64(z, 1));
}

// One row's two-block dpbusd -> exact block sums A, B.
INLINE void reduce1x2(const int type, __m512i p, int32_t *sa, int32_t *sb) {
    const __m512i z = chunks_ab(type, p);
    __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(z), _mm512_extracti64x4_epi64(z, 1));
    s = _mm256_hadd_epi32(s, s);
    s = _mm256_hadd_epi32(s, s);
    *sa = _mm256_cvtsi256_si32(s);
    *sb = _mm_cvtsi128_si32(_mm256_extracti128_si256(s, 1));
}

// One step of a tile: blocks ib (A) and ib + 1 (B) when two, else block ib only (B then
// repeats A and its result is dropped). Per (row, column) the ref's combine, block A
// then block B:
//   acc = acc + ((float)isum * (dw * da) [+ mw * sa])
// each operation rounded separately. R = 4: the 4 rows' sums in the lanes of acc4[c];
// R = 1: scalars acc1[c].
INLINE void quant_step(const int type, const int R, const int C, const int two, int64_t ib,
                       const char *const *w, const char *const *a, __m128 *acc4, float *acc1,
                       const char *pf) {
    const size_t ws = wblock_size(type);
    const int min = has_min(type);
    const int off = w_offset(type);
    const size_t as = min ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t wb = two ? ws : 0, ab = two ? as : 0; // block B - block A
    __m512i av[4], bias[4];
    __m512 sa[4];
    if (pf) {
        // the next tile's bytes spread over this tile's steps, in address order
        const int step = R * 2 * (int)ws;
        const char *p = pf + (size_t)(ib / 2) * (size_t)step;
        _Pragma("GCC unroll 8")
        for (int o = 0; o < step; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
    }
    UNROLL
    for (int c = 0; c < C; c++) {
        const char *b0 = a[c] + (size_t)ib * as;
        av[c] = load_a2(type, b0, b0 + ab);
        sa[c] = spread_ascales(min, load_scales2(min, b0, b0 + ab));
        bias[c] = _mm512_setzero_si512();
        if (off)
            bias[c] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                       _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)off), av[c]));
    }
    if (R == 4) {
        const char *pa[4];
        __m512i q[4];
        UNROLL
        for (int r = 0; r < 4; r++) {
            pa[r] = w[r] + (size_t)ib * ws;
            q[r] = load_w2(type, pa[r], pa[r] + wb);
        }
        const __m512 sw = weight_scales4(min, pa, wb);
        UNROLL
        for (int c = 0; c < C; c++) {
            const __m256i isum = reduce4x2(type, _mm512_dpbusd_epi32(bias[c], q[0], av[c]),
                                           _mm512_dpbusd_epi32(bias[c], q[1], av[c]),
                                           _mm512_dpbusd_epi32(bias[c], q[2], av[c]),
                                           _mm512_dpbusd_epi32(bias[c], q[3], av[c]));
            __m256 t;
            if (min) {
                const __m512 p = _mm512_mul_ps(sw, sa[c]); // [dw*da A, B, mw*sa A, B]
                t = _mm256_mul_ps(_mm256_cvtepi32_ps(isum), _mm512_castps512_ps256(p));
                t = _mm256_add_ps(t, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p), 1)));
            } else {
                t = _mm256_mul_ps(_mm256_cvtepi32_ps(isum),
                                  _mm256_mul_ps(_mm512_castps512_ps256(sw), _mm512_castps512_ps256(sa[c])));
            }
            acc4[c] = _mm_add_ps(acc4[c], _mm256_castps256_ps128(t));
            if (two) acc4[c] = _mm_add_ps(acc4[c], _mm256_extractf128_ps(t, 1));
        }
    } else {
        const char *b0 = w[0] + (size_t)ib * ws;
        const __m512i q = load_w2(type, b0, b0 + wb);
        const float dwa = h2f(load_u16(b0)), dwb = h2f(load_u16(b0 + wb));
        const float mwa = min ? h2f(load_u16(b0 + 2)) : 0.0f, mwb = min ? h2f(load_u16(b0 + wb + 2)) : 0.0f;
        UNROLL
        for (int c = 0; c < C; c++) {
            const char *y0 = a[c] + (size_t)ib * as;
            const float daa = h2f(load_u16(y0)), dab = h2f(load_u16(y0 + ab));
            const float saa = min ? h2f(load_u16(y0 + 2)) : 0.0f, sab = min ? h2f(load_u16(y0 + ab + 2)) : 0.0f;
            int32_t isa, isb;
            reduce1x2(type, _mm512_dpbusd_epi32(bias[c], q, av[c]), &isa, &isb);
            float t = (float)isa * (dwa * daa);
            if (min) t = t + mwa * saa;
            acc1[c] = acc1[c] + t;
            if (two) {
                t = (float)isb * (dwb * dab);
                if (min) t = t + mwb * sab;
                acc1[c] = acc1[c] + t;
            }
        }
    }
}

// R weight rows w[r] (R = 4 or 1), C activation rows a[c] -> out[r * C + c], bitwise the
// ref's dots. pf: the start of the rows the next tile reads (or NULL). A tile reads R
// short row streams that hardware prefetchers pick up late; spreading the next tile's
// bytes over this tile's steps, in address order, keeps the memory busy.
INLINE void quant_tile(const int type, const int R, const int C, int64_t nb,
                       const char *const *w, const char *const *a, float *out, const char *pf) {
    __m128 acc4[4];
    float acc1[4];
    UNROLL
    for (int c = 0; c < C; c++) {
        acc4[c] = _mm_setzero_ps();
        acc1[c] = 0.0f;
    }
    int64_t ib = 0;
    for (; ib + 2 <= nb; ib += 2) quant_step(type, R, C, 1, ib, w, a, acc4, acc1, pf);
    if (ib < nb) quant_step(type, R, C, 0, ib, w, a, acc4, acc1, NULL);
    if (R == 4) {
        UNROLL
        for (int c = 0; c < C; c++) {
            float v[4];
            _mm_storeu_ps(v, acc4[c]);
            UNROLL
            for (int r = 0; r < 4; r++) out[r * C + c] = v[r];
        }
    } else {
        UNROLL
        for (int c = 0; c < C; c++) out[c] = acc1[c];
    }
}

// ---- Q8_0 gemv, one row after the other ----------------------------------------------
// Weights stream from memory fastest as one sequential stream: tiles that read four rows
// side by side need software prefetches to keep the memory busy and still read slower
// than rows taken one after the other (docs/PERFORMANCE.md). The exact block sums of one
// row are reduced 8 blocks at a time (four two-block dpbusd registers through reduce4x2,
// the reduction the tiles use), and the row's float accumulator adds them in block order,
// as the ref does. Per call, each activation block's -128 * (sum of its quants) (the
// unsigned-weight correction) and its scale are laid out in the order reduce4x2 returns
// blocks: [b0, b2, b4, b6, b1, b3, b5, b7] per group of 8.
#define LIN_MAX_BLOCKS 512 // n <= 16384: the per-call tables live on the stack

// Q8_0 only: the same form for Q4_0 and Q5_0 (half the bytes for the same work, and more
// instructions per block than the four-row tiles) made them 15-30% slower (2 threads, 896
// and 4096 columns).
INLINE int lin_pos(int64_t b) { return (int)((b & ~(int64_t)7) + (b & 1) * 4 + ((b & 7) >> 1)); }

// One group of m (1..8) blocks of a row: acc + the blocks' terms, in block order.
INLINE float lin_group(float acc, const int m, const char *w, const char *a, const int32_t *nbias,
                       const float *da) {
    const int type = ROOST_TYPE_Q8_0;
    const size_t ws = sizeof(block_q8_0), as = sizeof(block_q8_0);
    __m512i p[4];
    const char *sw[8];
    UNROLL
    for (int j = 0; j < 4; j++) {
        if (2 * j < m) {
            const char *wa = w + (size_t)(2 * j) * ws, *xa = a + (size_t)(2 * j) * as;
            // an odd last block pairs with itself; its second half is not used
            const char *wb = 2 * j + 1 < m ? wa + ws : wa, *xb = 2 * j + 1 < m ? xa + as : xa;
            p[j] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), load_w2(type, wa, wb), load_a2(type, xa, xb));
            sw[2 * j] = wa;
            sw[2 * j + 1] = wb;
        } else {
            p[j] = _mm512_setzero_si512();
            sw[2 * j] = w;
            sw[2 * j + 1] = w;
        }
    }
    const __m256i isum = _mm256_add_epi32(reduce4x2(type, p[0], p[1], p[2], p[3]),
                                          _mm256_loadu_si256((const __m256i *)nbias));
    const __m128i sv = _mm_set_epi64x(
        (long long)((uint64_t)load_u16(sw[1]) | ((uint64_t)load_u16(sw[3]) << 16) | ((uint64_t)load_u16(sw[5]) << 32) |
                    ((uint64_t)load_u16(sw[7]) << 48)),
        (long long)((uint64_t)load_u16(sw[0]) | ((uint64_t)load_u16(sw[2]) << 16) | ((uint64_t)load_u16(sw[4]) << 32) |
                    ((uint64_t)load_u16(sw[6]) << 48)));
    // (float)isum * (dw * da), each operation rounded as in the ref
    const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(_mm256_cvtph_ps(sv), _mm256_loadu_ps(da)));
    float tv[8];
    _mm256_storeu_ps(tv, t);
    UNROLL
    for (int k = 0; k < 8; k++)
        if (k < m) acc = acc + tv[(k & 1) * 4 + (k >> 1)];
    return acc;
}

INLINE void q8_gemv_lin(int64_t n, int64_t nrows, const char *w, size_t row_bytes, const char *a, float *y) {
    const size_t ws = sizeof(block_q8_0), as = sizeof(block_q8_0);
    const int32_t off = w_offset(ROOST_TYPE_Q8_0);
    const int64_t nb = n / 32, full = nb & ~(int64_t)7;
    int32_t nbias[LIN_MAX_BLOCKS] __attribute__((aligned(32)));
    float da[LIN_MAX_BLOCKS] __attribute__((aligned(32)));
    const int64_t padded = (nb + 7) & ~(int64_t)7;
    for (int64_t b = nb; b < padded; b++) {
        nbias[lin_pos(b)] = 0;
        da[lin_pos(b)] = 0.0f;
    }
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *q = (const int8_t *)(a + (size_t)b * as + offsetof(block_q8_0, qs));
        int32_t s = 0;
        for (int j = 0; j < 32; j++) s += q[j];
        nbias[lin_pos(b)] = -off * s;
        da[lin_pos(b)] = h2f(load_u16(a + (size_t)b * as));
    }
    for (int64_t r = 0; r < nrows; r++) {
        const char *row = w + (size_t)r * row_bytes;
        float acc = 0.0f;
        for (int64_t g = 0; g < full; g += 8)
            acc = lin_group(acc, 8, row + (size_t)g * ws, a + (size_t)g * as, nbias + g, da + g);
        if (full < nb)
            acc = lin_group(acc, (int)(nb - full), row + (size_t)full * ws, a + (size_t)full * as,
                            nbias + full, da + full);
        y[r] = acc;
    }
}

// Q8_0 rows of up to LIN_MAX_BLOCKS blocks one after the other (above); the rest in tiles
// of four rows.
INLINE void quant_gemv(const int type, int64_t n, int64_t nrows, const void *w,
                       size_t row_bytes, const void *a, float *y) {
    const int64_t nb = n / 32;
    if (is_q8(type) && nb <= LIN_MAX_BLOCKS) {
        q8_gemv_lin(n, nrows, w, row_bytes, a, y);
        return;
    }
    const char *wb = w;
    const char *ap[1] = {a};
    int64_t r = 0;
    for (; r + 4 <= nrows; r += 4) {
        const char *wp[4] = {wb + (size_t)r * row_bytes, wb + (size_t)(r + 1) * row_bytes,
                             wb + (size_t)(r + 2) * row_bytes, wb + (size_t)(r + 3) * row_bytes};
        quant_tile(type, 4, 1, nb, wp, ap, y + r, r + 8 <= nrows ? wp[0] + 4 * row_bytes : NULL);
    }
    for (; r < nrows; r++) {
        const char *wp[1] = {wb + (size_t)r * row_bytes};
        quant_tile(type, 1, 1, nb, wp, ap, y + r, NULL);
    }
}

#ifndef QG_R
#define QG_R 4
#endif
#ifndef QG_C
#define QG_C 4
#endif

// C columns starting at activation ap[]: tiles of QG_R rows, then single rows.
INLINE void quant_gemm_cols(const int type, const int C, int64_t nb, int64_t nrows, const char *wb,
                            size_t row_bytes, const char *const *ap, float *y, int64_t y_stride) {
    float out[16];
    int64_t r = 0;
    for (; r + QG_R <= nrows; r += QG_R) {
        const char *wp[4];
        UNROLL
        for (int i = 0; i < QG_R; i++) wp[i] = wb + (size_t)(r + i) * row_bytes;
        // the next tile's rows prefetched as in the gemv (short rows: the hardware
        // prefetchers start too late)
        quant_tile(type, QG_R, C, nb, wp, ap, out, r + 2 * QG_R <= nrows ? wp[0] + QG_R * row_bytes : NULL);
        UNROLL
        for (int i = 0; i < QG_R; i++)
            UNROLL
            for (int c = 0; c < C; c++) y[c * y_stride + r + i] = out[i * C + c];
    }
    for (; r < nrows; r++) {
        const char *wp[1] = {wb + (size_t)r * row_bytes};
        quant_tile(type, 1, C, nb, wp, ap, out, NULL);
        UNROLL
        for (int c = 0; c < C; c++) y[c * y_stride + r] = out[c];
    }
}

// Column groups of QG_C (then of 3 or 2), a last single column by the gemv.
INLINE void quant_gemm_small(const int type, int64_t n, int64_t nrows, const void *w,
                       size_t row_bytes, int64_t ncols, const void *a, size_t a_stride,
                       float *y, int64_t y_stride) {
    const int64_t nb = n / 32;
    const char *wb = w, *ab = a;
    int64_t c = 0;
    while (c < ncols) {
        const int64_t left = ncols - c;
        const char *ap[4];
        for (int i = 0; i < 4 && i < left; i++) ap[i] = ab + (size_t)(c + i) * a_stride;
        if (left >= QG_C) {
            quant_gemm_cols(type, QG_C, nb, nrows, wb, row_bytes, ap, y + c * y_stride, y_stride);
            c += QG_C;
        } else if (left == 3) {
            quant_gemm_cols(type, 3, nb, nrows, wb, row_bytes, ap, y + c * y_stride, y_stride);
            c += 3;
        } else if (left == 2) {
            quant_gemm_cols(type, 2, nb, nrows, wb, row_bytes, ap, y + c * y_stride, y_stride);
            c += 2;
        } else {
            quant_gemv(type, n, nrows, w, row_bytes, ap[0], y + c * y_stride);
            c += 1;
        }
    }
}

// ---- gemm with repacked 16-row tiles -------------------------------------------------
// For many columns the weights of 16 rows are repacked once per K range (RP_KB blocks)
// into registers that need no horizontal reduction: per block, register k (k = 0..7)
// holds in int32 lane r the 4 bytes of elements 4k..4k+3 of row r (unsigned: weight +
// offset). An activation column's 4 bytes of the same elements are broadcast, and 8
// dpbusd leave in lane r the exact block sum of (row r, column) (the accumulator starts
// at -offset * sum(activation block)). The float combine of the ref then runs in 16
// lanes at once: t = (float)isum * (dw * da) [+ mw * sa]; acc = acc + t, block after
// block. Across K ranges the 16 accumulators of a column are kept in y (exact), so the
// block order is the ref's. Results are the ref's bits, as in the tiles above.
#define UNROLL16 _Pragma("GCC unroll 16")
#define RP_KB 32  // blocks per K range
#define RP_CC 128 // columns per chunk (activation metadata buffer)

typedef struct {
    __m512i w[RP_KB][8];
    __m512 dw[RP_KB], mw[RP_KB];
} rp_tile;

typedef struct {
    int32_t bias[RP_CC][RP_KB]; // -offset * sum(a block)
    float da[RP_CC][RP_KB], sa[RP_CC][RP_KB];
} rp_acts;

static _Thread_local rp_tile rp_tile_buf;
static _Thread_local rp_acts rp_acts_buf;

// Four 16-byte pieces (row j, j + 4, j + 8, j + 12 at p + j*rb ...) into one register.
INLINE __m512i load4x128(const char *p, size_t rb4) {
    __m512i z = _mm512_castsi128_si512(load128(p));
    z = _mm512_inserti32x4(z, load128(p + rb4), 1);
    z = _mm512_inserti32x4(z, load128(p + 2 * rb4), 2);
    return _mm512_inserti32x4(z, load128(p + 3 * rb4), 3);
}

// 16 bits of qh from 4 rows (rows j, j+4, j+8, j+12), shifted by sh, as a 64-bit mask.
INLINE __mmask64 qh_mask4(const char *p, size_t rb4, int sh) {
    uint64_t m = 0;
    UNROLL
    for (int i = 0; i < 4; i++) m |= (uint64_t)((load_u32(p + (size_t)i * rb4) >> sh) & 0xffffu) << (16 * i);
    return (__mmask64)m;
}

// Z0..Z3 (lane l of Zj = row 4l + j, dwords = element groups g0..g3) -> k[g] with
// dword 4l + j = row 4l + j.
INLINE void transpose4(__m512i z0, __m512i z1, __m512i z2, __m512i z3, __m512i *k) {
    const __m512i t0 = _mm512_unpacklo_epi32(z0, z1), t1 = _mm512_unpackhi_epi32(z0, z1);
    const __m512i t2 = _mm512_unpacklo_epi32(z2, z3), t3 = _mm512_unpackhi_epi32(z2, z3);
    _mm512_store_si512(k + 0, _mm512_unpacklo_epi64(t0, t2));
    _mm512_store_si512(k + 1, _mm512_unpackhi_epi64(t0, t2));
    _mm512_store_si512(k + 2, _mm512_unpacklo_epi64(t1, t3));
    _mm512_store_si512(k + 3, _mm512_unpackhi_epi64(t1, t3));
}

// Repack 16 rows (row r at w + r * rb), blocks kb0 .. kb0 + nkb - 1.
INLINE void rp_repack(const int type, const char *w, size_t rb, int64_t kb0, int nkb, rp_tile *T) {
    const size_t ws = wblock_size(type);
    const size_t rb4 = 4 * rb;
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32((int)rb));
    for (int kb = 0; kb < nkb; kb++) {
        const char *b = w + (size_t)(kb0 + kb) * ws;
        __m512i lo[4], hi[4];
        UNROLL
        for (int j = 0; j < 4; j++) {
            const char *p = b + (size_t)j * rb;
            if (is_q8(type)) {
                lo[j] = _mm512_xor_si512(load4x128(p + qs_offset(type), rb4), _mm512_set1_epi8((char)0x80));
                hi[j] = _mm512_xor_si512(load4x128(p + qs_offset(type) + 16, rb4), _mm512_set1_epi8((char)0x80));
            } else {
                const __m512i q = load4x128(p + qs_offset(type), rb4);
                lo[j] = _mm512_and_si512(q, _mm512_set1_epi8(0x0f));
                hi[j] = _mm512_and_si512(_mm512_srli_epi16(q, 4), _mm512_set1_epi8(0x0f));
                if (is_q5(type)) {
                    lo[j] = _mm512_mask_add_epi8(lo[j], qh_mask4(p + qh_offset(type), rb4, 0), lo[j], _mm512_set1_epi8(16));
                    hi[j] = _mm512_mask_add_epi8(hi[j], qh_mask4(p + qh_offset(type), rb4, 16), hi[j], _mm512_set1_epi8(16));
                }
            }
        }
        transpose4(lo[0], lo[1], lo[2], lo[3], &T->w[kb][0]);
        transpose4(hi[0], hi[1], hi[2], hi[3], &T->w[kb][4]);
        const __m512i g = _mm512_i32gather_epi32(idx, b, 1);
        T->dw[kb] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
        if (has_min(type)) T->mw[kb] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16)));
    }
}

// Activation metadata of columns a + c * a_stride (c < C), blocks kb0 .. kb0 + nkb - 1.
INLINE void rp_acts_fill(const int type, const char *a, size_t a_stride, int64_t C, int64_t kb0, int nkb,
                         rp_acts *A) {
    const int min = has_min(type);
    const size_t as = min ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t qoff = min ? offsetof(block_q8_1, qs) : offsetof(block_q8_0, qs);
    const int off = w_offset(type);
    for (int64_t c = 0; c < C; c++) {
        const char *col = a + (size_t)c * a_stride + (size_t)kb0 * as;
        for (int kb = 0; kb < nkb; kb++) {
            const char *b = col + (size_t)kb * as;
            A->da[c][kb] = h2f(load_u16(b));
            if (min) A->sa[c][kb] = h2f(load_u16(b + 2));
            if (off) {
                // sum of (a + 128) by psadbw, minus 32 * 128
                const __m256i s = _mm256_sad_epu8(_mm256_xor_si256(load256(b + qoff), _mm256_set1_epi8((char)0x80)),
                                                  _mm256_setzero_si256());
                __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
                t = _mm_add_epi64(t, _mm_unpackhi_epi64(t, t));
                A->bias[c][kb] = -off * (_mm_cvtsi128_si32(t) - 32 * 128);
            } else {
                A->bias[c][kb] = 0;
            }
        }
    }
}

// C columns (c0.. of the chunk, activations at ap[c] pointing at block kb0's qs) x the
// 16 rows of T, blocks 0 .. nkb - 1 of the range; accumulators in y[c * y_stride + 0..15].
INLINE void rp_cols(const int type, const int C, int first, int nkb, const rp_tile *T, const rp_acts *A,
                    int c0, const char *a, size_t a_stride, float *y, int64_t y_stride) {
    const int min = has_min(type);
    const size_t as = min ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const char *ap[8];
    __m512 acc[8];
    UNROLL16
    for (int c = 0; c < C; c++) {
        ap[c] = a + (size_t)c * a_stride;
        acc[c] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(y + c * y_stride);
    }
    for (int kb = 0; kb < nkb; kb++) {
        __m512i s[8];
        UNROLL16
        for (int c = 0; c < C; c++) s[c] = _mm512_set1_epi32(A->bias[c0 + c][kb]);
        UNROLL16
        for (int k = 0; k < 8; k++) {
            const __m512i wk = _mm512_load_si512(&T->w[kb][k]);
            UNROLL16
            for (int c = 0; c < C; c++)
                s[c] = _mm512_dpbusd_epi32(s[c], wk, _mm512_set1_epi32((int)load_u32(ap[c] + (size_t)kb * as + 4 * k)));
        }
        const __m512 dw = T->dw[kb];
        UNROLL16
        for (int c = 0; c < C; c++) {
            __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(s[c]), _mm512_mul_ps(dw, _mm512_set1_ps(A->da[c0 + c][kb])));
            if (min) t = _mm512_add_ps(t, _mm512_mul_ps(T->mw[kb], _mm512_set1_ps(A->sa[c0 + c][kb])));
            acc[c] = _mm512_add_ps(acc[c], t);
        }
    }
    UNROLL16
    for (int c = 0; c < C; c++) _mm512_storeu_ps(y + c * y_stride, acc[c]);
}

// nrows16 (a multiple of 16) rows x ncols columns by repacked tiles.
INLINE void quant_gemm_repacked(const int type, int64_t nb, int64_t nrows16, const char *w, size_t row_bytes,
                                int64_t ncols, const char *a, size_t a_stride, float *y, int64_t y_stride) {
    const int min = has_min(type);
    const size_t as = min ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t qoff = min ? offsetof(block_q8_1, qs) : offsetof(block_q8_0, qs);
    rp_tile *T = &rp_tile_buf;
    rp_acts *A = &rp_acts_buf;
    for (int64_t c0 = 0; c0 < ncols; c0 += RP_CC) {
        const int64_t cc = ncols - c0 < RP_CC ? ncols - c0 : RP_CC;
        const char *ac = a + (size_t)c0 * a_stride;
        for (int64_t kb0 = 0; kb0 < nb; kb0 += RP_KB) {
            const int nkb = (int)(nb - kb0 < RP_KB ? nb - kb0 : RP_KB);
            rp_acts_fill(type, ac, a_stride, cc, kb0, nkb, A);
            const char *aq = ac + (size_t)kb0 * as + qoff;
            for (int64_t r = 0; r < nrows16; r += 16) {
                rp_repack(type, w + (size_t)r * row_bytes, row_bytes, kb0, nkb, T);
                float *yt = y + c0 * y_stride + r;
                int c = 0;
                for (; c + 8 <= cc; c += 8)
                    rp_cols(type, 8, kb0 == 0, nkb, T, A, c, aq + (size_t)c * a_stride, a_stride, yt + c * y_stride, y_stride);
                if (c + 4 <= cc) {
                    rp_cols(type, 4, kb0 == 0, nkb, T, A, c, aq + (size_t)c * a_stride, a_stride, yt + c * y_stride, y_stride);
                    c += 4;
                }
                for (; c < cc; c++)
                    rp_cols(type, 1, kb0 == 0, nkb, T, A, c, aq + (size_t)c * a_stride, a_stride, yt + c * y_stride, y_stride);
            }
        }
    }
}

// Columns below which the tiles straight from the stored weights beat the repacked ones:
// repacking 16 rows costs about as much as 4 or 5 columns of products (decode steps of a
// few sequences, see docs/RWKV.md "Batched decode"; measured on Zen 4: Q8_0 768 x 768 and
// 65536 x 768 with 4 columns 2-3x faster than repacked).
#ifndef QG_SMALL_COLS
#define QG_SMALL_COLS 8
#endif

// Repacked 16-row tiles when there are enough columns; the rest (rows past a multiple of
// 16, few columns) by the tiles above.
INLINE void quant_gemm(const int type, int64_t n, int64_t nrows, const void *w,
                       size_t row_bytes, int64_t ncols, const void *a, size_t a_stride,
                       float *y, int64_t y_stride) {
    const int64_t nrows16 = nrows & ~(int64_t)15;
    if (ncols < QG_SMALL_COLS || nrows16 == 0 || row_bytes > (size_t)(INT32_MAX / 16)) {
        quant_gemm_small(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);
        return;
    }
    quant_gemm_repacked(type, n / 32, nrows16, w, row_bytes, ncols, a, a_stride, y, y_stride);
    if (nrows16 < nrows)
        quant_gemm_small(type, n, nrows - nrows16, (const char *)w + (size_t)nrows16 * row_bytes, row_bytes, ncols, a,
                         a_stride, y + nrows16, y_stride);
}

#define QUANT_KERNELS(name, type)                                                             \
    TARGET static void gemv_##name##_avx512(int64_t n, int64_t nrows, const void *w,         \
                                            size_t row_bytes, const void *a, float *y) {     \
        quant_gemv(type, n, nrows, w, row_bytes, a, y);                                      \
    }                                                                                        \
    TARGET static void gemm_##name##_avx512(int64_t n, int64_t nrows, const void *w,         \
                                            size_t row_bytes, int64_t ncols, const void *a,  \
                                            size_t a_stride, float *y, int64_t y_stride) {   \
        quant_gemm(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);           \
    }

QUANT_KERNELS(q4_0, ROOST_TYPE_Q4_0)
QUANT_KERNELS(q4_1, ROOST_TYPE_Q4_1)
QUANT_KERNELS(q5_0, ROOST_TYPE_Q5_0)
QUANT_KERNELS(q5_1, ROOST_TYPE_Q5_1)
QUANT_KERNELS(q8_0, ROOST_TYPE_Q8_0)

// ---- float weights ------------------------------------------------------------------

// 16 weights from element i; masked (elements past the mask read as 0, not loaded).
INLINE __m512 load_f16x(const int type, const char *row, int64_t i, __mmask16 k) {
    switch (type) {
    case ROOST_TYPE_F16:
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, row + i * 2));
    case ROOST_TYPE_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, row + i * 2)), 16));
    default:
        return _mm512_maskz_loadu_ps(k, row + i * 4);
    }
}

INLINE __m512 load_f16(const int type, const char *row, int64_t i) {
    switch (type) {
    case ROOST_TYPE_F16:
        return _mm512_cvtph_ps(load256(row + i * 2));
    case ROOST_TYPE_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load256(row + i * 2)), 16));
    default:
        return _mm512_loadu_ps((const float *)(row + i * 4));
    }
}

// Per (row, column): two accumulators over 32-element steps, a 16-element step into the
// first, a masked step (< 16 elements) into the second; result = hsum(acc0 + acc1).
// pf: the start of the rows the next tile reads, or NULL. Short rows (a few KB) end
// before hardware prefetchers have picked up their streams, so gemv prefetches the next
// tile's rows, spread over this tile's iterations in address order; long rows do not
// need it (and were slower with it).
INLINE void float_tile(const int type, const int R, const int C, int64_t n,
                       const char *const *w, const float *const *a, float *out, const char *pf) {
    const int esize = type == ROOST_TYPE_F32 ? 4 : 2;
    __m512 acc0[4][2], acc1[4][2];
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int c = 0; c < C; c++) {
            acc0[r][c] = _mm512_setzero_ps();
            acc1[r][c] = _mm512_setzero_ps();
        }
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        if (pf) {
            const char *p = pf + (size_t)(i / 32) * (size_t)(R * 32 * esize);
            for (int o = 0; o < R * 32 * esize; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
        }
        __m512 x0[2], x1[2];
        UNROLL
        for (int c = 0; c < C; c++) {
            x0[c] = _mm512_loadu_ps(a[c] + i);
            x1[c] = _mm512_loadu_ps(a[c] + i + 16);
        }
        UNROLL
        for (int r = 0; r < R; r++) {
            const __m512 w0 = load_f16(type, w[r], i);
            const __m512 w1 = load_f16(type, w[r], i + 16);
            UNROLL
            for (int c = 0; c < C; c++) {
                acc0[r][c] = _mm512_fmadd_ps(w0, x0[c], acc0[r][c]);
                acc1[r][c] = _mm512_fmadd_ps(w1, x1[c], acc1[r][c]);
            }
        }
    }
    if (i + 16 <= n) {
        __m512 x0[2];
        UNROLL
        for (int c = 0; c < C; c++) x0[c] = _mm512_loadu_ps(a[c] + i);
        UNROLL
        for (int r = 0; r < R; r++) {
            const __m512 w0 = load_f16(type, w[r], i);
            UNROLL
            for (int c = 0; c < C; c++) acc0[r][c] = _mm512_fmadd_ps(w0, x0[c], acc0[r][c]);
        }
        i += 16;
    }
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
        __m512 x1[2];
        UNROLL
        for (int c = 0; c < C; c++) x1[c] = _mm512_maskz_loadu_ps(k, a[c] + i);
        UNROLL
        for (int r = 0; r < R; r++) {
            const __m512 w1 = load_f16x(type, w[r], i, k);
            UNROLL
            for (int c = 0; c < C; c++) acc1[r][c] = _mm512_fmadd_ps(w1, x1[c], acc1[r][c]);
        }
    }
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int c = 0; c < C; c++) out[r * C + c] = hsum16(_mm512_add_ps(acc0[r][c], acc1[r][c]));
}

// Rows up to 4 KiB are read one after the other: one sequential stream, which hardware
// prefetchers follow (four rows side by side needed software prefetches and still read
// slower; docs/PERFORMANCE.md). Longer rows go four at a time, each row its own stream.
// A row's arithmetic is the same either way.
INLINE void float_gemv(const int type, int64_t n, int64_t nrows, const void *w,
                       size_t row_bytes, const void *a, float *y) {
    const char *wb = w;
    const float *ap[1] = {a};
    int64_t r = 0;
    if (row_bytes > 4096)
        for (; r + 4 <= nrows; r += 4) {
            const char *wp[4] = {wb + (size_t)r * row_bytes, wb + (size_t)(r + 1) * row_bytes,
                                 wb + (size_t)(r + 2) * row_bytes, wb + (size_t)(r + 3) * row_bytes};
            float_tile(type, 4, 1, n, wp, ap, y + r, NULL);
        }
    for (; r < nrows; r++) {
        const char *wp[1] = {wb + (size_t)r * row_bytes};
        float_tile(type, 1, 1, n, wp, ap, y + r, NULL);
    }
}

// gemm: row blocks of FG_R rows whose F16 / BF16 weights are converted once per K range
// into an F32 scratch (F32 weights are read in place), swept by every column of a panel
// of up to FG_PC columns in register tiles of FG_R rows x FG_C columns. Each (row,
// column) pair keeps gemv's two accumulators and gemv's FMA sequence: the K ranges are
// multiples of 32 elements and the accumulators are stored and reloaded between ranges
// (exact), the last range adds gemv's 16-element step, masked step and horizontal sum.
// So every output is bitwise float_tile's (gemv's) for that row and column.
#define FG_R 4     // rows per tile (and per converted block)
#define FG_C 3     // columns per register tile: 2 x 4 x 3 accumulators + 3 activations
#define FG_KC 1024 // elements per K range (multiple of 32)
#define FG_PC 64   // columns per panel (accumulator state buffer)

static _Thread_local float fg_ws[FG_R][FG_KC + 32] __attribute__((aligned(64)));
static _Thread_local __m512 fg_state[FG_PC * FG_R * 2];

// R rows x C columns over one K range of len (a multiple of 32) elements: ws[r] and a[c]
// point at the range's first element. st: the pairs' accumulators, pair (r, c) at
// st[(c * FG_R + r) * 2]; first: start from zero, else load them; last: finish (tail
// elements follow the range: tail = n % 32) and write y[c * y_stride + r], else store.
INLINE void fg_tile(const int R, const int C, int64_t len, const float *const *ws, const float *const *a,
                    __m512 *st, int first, int last, int64_t tail, float *y, int64_t y_stride) {
    __m512 acc0[FG_R][FG_C], acc1[FG_R][FG_C];
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int c = 0; c < C; c++) {
            acc0[r][c] = first ? _mm512_setzero_ps() : st[(c * FG_R + r) * 2];
            acc1[r][c] = first ? _mm512_setzero_ps() : st[(c * FG_R + r) * 2 + 1];
        }
    for (int64_t i = 0; i < len; i += 32) {
        __m512 x[FG_C];
        UNROLL
        for (int c = 0; c < C; c++) x[c] = _mm512_loadu_ps(a[c] + i);
        UNROLL
        for (int r = 0; r < R; r++) {
            const __m512 w0 = _mm512_loadu_ps(ws[r] + i);
            UNROLL
            for (int c = 0; c < C; c++) acc0[r][c] = _mm512_fmadd_ps(w0, x[c], acc0[r][c]);
        }
        UNROLL
        for (int c = 0; c < C; c++) x[c] = _mm512_loadu_ps(a[c] + i + 16);
        UNROLL
        for (int r = 0; r < R; r++) {
            const __m512 w1 = _mm512_loadu_ps(ws[r] + i + 16);
            UNROLL
            for (int c = 0; c < C; c++) acc1[r][c] = _mm512_fmadd_ps(w1, x[c], acc1[r][c]);
        }
    }
    if (!last) {
        UNROLL
        for (int r = 0; r < R; r++)
            UNROLL
            for (int c = 0; c < C; c++) {
                st[(c * FG_R + r) * 2] = acc0[r][c];
                st[(c * FG_R + r) * 2 + 1] = acc1[r][c];
            }
        return;
    }
    int64_t i = len;
    if (tail >= 16) {
        UNROLL
        for (int r = 0; r < R; r++) {
            const __m512 w0 = _mm512_loadu_ps(ws[r] + i);
            UNROLL
            for (int c = 0; c < C; c++) acc0[r][c] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(a[c] + i), acc0[r][c]);
        }
        i += 16;
        tail -= 16;
    }
    if (tail > 0) {
        const __mmask16 k = (__mmask16)((1u << tail) - 1u);
        UNROLL
        for (int r = 0; r < R; r++) {
            const __m512 w1 = _mm512_maskz_loadu_ps(k, ws[r] + i);
            UNROLL
            for (int c = 0; c < C; c++)
                acc1[r][c] = _mm512_fmadd_ps(w1, _mm512_maskz_loadu_ps(k, a[c] + i), acc1[r][c]);
        }
    }
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int c = 0; c < C; c++) y[c * y_stride + r] = hsum16(_mm512_add_ps(acc0[r][c], acc1[r][c]));
}

#define FG_TILE(R, C)                                                                              \
    TARGET __attribute__((noinline)) static void fg_tile_##R##x##C(                               \
        int64_t len, const float *const *ws, const float *const *a, __m512 *st, int first, int last, \
        int64_t tail, float *y, int64_t y_stride) {                                                \
        fg_tile(R, C, len, ws, a, st, first, last, tail, y, y_stride);                             \
    }
FG_TILE(4, 3)
FG_TILE(4, 2)
FG_TILE(4, 1)
FG_TILE(1, 3)
FG_TILE(1, 2)
FG_TILE(1, 1)

// Few columns: tiles straight from the stored weights (converting them for the scratch
// costs more than it saves). Rows outside, columns inside: a tile's rows are read from
// memory once and stay in L1 for the other column pairs (an odd last column runs as a
// 4 x 1 tile, gemv's shape). Every (row, column) keeps float_tile's own accumulators, so
// the tile shape does not change a bit.
INLINE void float_gemm_small(const int type, int64_t n, int64_t nrows, const void *w,
                       size_t row_bytes, int64_t ncols, const void *a, size_t a_stride,
                       float *y, int64_t y_stride) {
    const char *wb = w, *ab = a;
    float out[8];
    int64_t r = 0;
    for (; r + 4 <= nrows; r += 4) {
        const char *wp[4] = {wb + (size_t)r * row_bytes, wb + (size_t)(r + 1) * row_bytes,
                             wb + (size_t)(r + 2) * row_bytes, wb + (size_t)(r + 3) * row_bytes};
        // the first column pair prefetches the next tile's rows, as the gemv does
        const char *pf = row_bytes <= 4096 && r + 8 <= nrows ? wp[0] + 4 * row_bytes : NULL;
        int64_t c = 0;
        for (; c + 2 <= ncols; c += 2) {
            const float *ap[2] = {(const float *)(ab + (size_t)c * a_stride),
                                  (const float *)(ab + (size_t)(c + 1) * a_stride)};
            float_tile(type, 4, 2, n, wp, ap, out, c == 0 ? pf : NULL);
            UNROLL
            for (int i = 0; i < 4; i++) {
                y[c * y_stride + r + i] = out[i * 2];
                y[(c + 1) * y_stride + r + i] = out[i * 2 + 1];
            }
        }
        if (c < ncols) {
            const float *ap[1] = {(const float *)(ab + (size_t)c * a_stride)};
            float_tile(type, 4, 1, n, wp, ap, y + c * y_stride + r, c == 0 ? pf : NULL);
        }
    }
    for (; r < nrows; r++) {
        const char *wp[1] = {wb + (size_t)r * row_bytes};
        int64_t c = 0;
        for (; c + 2 <= ncols; c += 2) {
            const float *ap[2] = {(const float *)(ab + (size_t)c * a_stride),
                                  (const float *)(ab + (size_t)(c + 1) * a_stride)};
            float_tile(type, 1, 2, n, wp, ap, out, NULL);
            y[c * y_stride + r] = out[0];
            y[(c + 1) * y_stride + r] = out[1];
        }
        if (c < ncols) {
            const float *ap[1] = {(const float *)(ab + (size_t)c * a_stride)};
            float_tile(type, 1, 1, n, wp, ap, y + c * y_stride + r, NULL);
        }
    }
}

typedef void (*fg_tile_fn)(int64_t, const float *const *, const float *const *, __m512 *, int, int, int64_t,
                           float *, int64_t);

INLINE void float_gemm(const int type, int64_t n, int64_t nrows, const void *w,
                       size_t row_bytes, int64_t ncols, const void *a, size_t a_stride,
                       float *y, int64_t y_stride) {
    const char *wb = w, *ab = a;
    if (ncols < 8) {
        float_gemm_small(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);
        return;
    }
    static const fg_tile_fn tiles[2][FG_C] = {{fg_tile_1x1, fg_tile_1x2, fg_tile_1x3},
                                              {fg_tile_4x1, fg_tile_4x2, fg_tile_4x3}};
    const int64_t n32 = n & ~(int64_t)31, tail = n - n32;
    const int64_t nk = n32 == 0 ? 1 : (n32 + FG_KC - 1) / FG_KC;
    for (int64_t c0 = 0; c0 < ncols; c0 += FG_PC) {
        const int64_t pc = ncols - c0 < FG_PC ? ncols - c0 : FG_PC;
        for (int64_t r0 = 0; r0 < nrows;) {
            const int R = nrows - r0 >= FG_R ? FG_R : 1;
            for (int64_t kk = 0; kk < nk; kk++) {
                const int64_t k0 = kk * FG_KC, len = n32 - k0 < FG_KC ? n32 - k0 : FG_KC;
                const int first = kk == 0, last = kk == nk - 1;
                const float *ws[FG_R];
                for (int r = 0; r < R; r++) {
                    const char *row = wb + (size_t)(r0 + r) * row_bytes;
                    if (type == ROOST_TYPE_F32) {
                        ws[r] = (const float *)row + k0;
                        continue;
                    }
                    float *s = fg_ws[r];
                    int64_t j = 0;
                    for (; j < len; j += 16) _mm512_store_ps(s + j, load_f16(type, row, k0 + j));
                    if (last) {
                        int64_t t = tail;
                        if (t >= 16) {
                            _mm512_store_ps(s + j, load_f16(type, row, k0 + j));
                            j += 16;
                            t -= 16;
                        }
                        if (t > 0) _mm512_store_ps(s + j, load_f16x(type, row, k0 + j, (__mmask16)((1u << t) - 1u)));
                    }
                    ws[r] = s;
                }
                for (int64_t c = 0; c < pc;) {
                    const int C = pc - c >= FG_C ? FG_C : (int)(pc - c);
                    const float *ap[FG_C];
                    for (int cc = 0; cc < C; cc++) ap[cc] = (const float *)(ab + (size_t)(c0 + c + cc) * a_stride) + k0;
                    tiles[R == FG_R][C - 1](len, ws, ap, fg_state + c * FG_R * 2, first, last, tail,
                                            y + (c0 + c) * y_stride + r0, y_stride);
                    c += C;
                }
            }
            r0 += R;
        }
    }
}

#define FLOAT_KERNELS(name, type)                                                             \
    TARGET static void gemv_##name##_avx512(int64_t n, int64_t nrows, const void *w,         \
                                            size_t row_bytes, const void *a, float *y) {     \
        float_gemv(type, n, nrows, w, row_bytes, a, y);                                      \
    }                                                                                        \
    TARGET static void gemm_##name##_avx512(int64_t n, int64_t nrows, const void *w,         \
                                            size_t row_bytes, int64_t ncols, const void *a,  \
                                            size_t a_stride, float *y, int64_t y_stride) {   \
        float_gemm(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);           \
    }

FLOAT_KERNELS(f32, ROOST_TYPE_F32)
FLOAT_KERNELS(f16, ROOST_TYPE_F16)
FLOAT_KERNELS(bf16, ROOST_TYPE_BF16)

// ---- activation quantizers: bitwise equal to the ref ones ---------------------------

// roundf (half away from zero) of |v| < 2^23, exactly: trunc, then step away from zero
// when the dropped fraction is at least one half.
INLINE __m512 round_away(__m512 v) {
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
    const __mmask16 k = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 step = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u)),
        _mm512_castps_si512(_mm512_set1_ps(1.0f))));
    return _mm512_mask_add_ps(t, k, t, step);
}

// 32 floats -> 32 int8 (in element order), their scale, and the sum of the int8 values.
INLINE __m256i quant32(const float *x, float *dout, int *sum) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const __m512 mx = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1));
    const __m256 m8 = _mm256_max_ps(_mm512_castps512_ps256(mx),
                                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(mx), 1)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *dout = d;
    const __m512 idv = _mm512_set1_ps(id);
    const __m512i i0 = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(v0, idv)));
    const __m512i i1 = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(v1, idv)));
    *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm512_cvtsepi32_epi8(i0)), _mm512_cvtsepi32_epi8(i1), 1);
}

TARGET static void quantize_q8_0_avx512(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        float d;
        int sum;
        const __m256i q = quant32(x + i * QK8_0, &d, &sum);
        y[i].d = roost_fp32_to_fp16(d);
        _mm256_storeu_si256((__m256i *)y[i].qs, q);
    }
}

TARGET static void quantize_q8_1_avx512(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        float d;
        int sum;
        const __m256i q = quant32(x + i * QK8_1, &d, &sum);
        y[i].d = roost_fp32_to_fp16(d);
        _mm256_storeu_si256((__m256i *)y[i].qs, q);
        y[i].s = roost_fp32_to_fp16((float)sum * d);
    }
}

// ---- dequantize: bitwise equal to the ref ones --------------------------------------

// One block -> 32 signed values, natural order.
INLINE __m256i block_values(const int type, const char *b) {
    const __m256i u = load_w1(type, b);
    return _mm256_sub_epi8(u, _mm256_set1_epi8((char)w_offset(type)));
}

INLINE void store_block(const __m256i q, const __m512 d, const __m512 m, const int add_m, float *y) {
    __m512 f0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q))), d);
    __m512 f1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1))), d);
    if (add_m) {
        f0 = _mm512_add_ps(f0, m);
        f1 = _mm512_add_ps(f1, m);
    }
    _mm512_storeu_ps(y, f0);
    _mm512_storeu_ps(y + 16, f1);
}

#define QUANT_DEQUANT(name, type)                                                            \
    TARGET static void dequantize_##name##_avx512(const void *vx, float *y, int64_t n) {    \
        const char *x = vx;                                                                 \
        const size_t bs = wblock_size(type);                                                \
        for (int64_t i = 0; i < n / 32; i++) {                                              \
            const char *b = x + (size_t)i * bs;                                             \
            const float d = h2f(load_u16(b));                                               \
            const float m = has_min(type) ? h2f(load_u16(b + 2)) : 0.0f;                    \
            store_block(block_values(type, b), _mm512_set1_ps(d), _mm512_set1_ps(m),        \
                        has_min(type), y + i * 32);                                         \
        }                                                                                   \
    }

QUANT_DEQUANT(q4_0, ROOST_TYPE_Q4_0)
QUANT_DEQUANT(q4_1, ROOST_TYPE_Q4_1)
QUANT_DEQUANT(q5_0, ROOST_TYPE_Q5_0)
QUANT_DEQUANT(q5_1, ROOST_TYPE_Q5_1)
QUANT_DEQUANT(q8_0, ROOST_TYPE_Q8_0)

TARGET static void dequantize_q8_1_avx512(const void *vx, float *y, int64_t n) {
    const block_q8_1 *x = vx;
    for (int64_t i = 0; i < n / QK8_1; i++)
        store_block(load256(x[i].qs), _mm512_set1_ps(h2f(x[i].d)), _mm512_setzero_ps(), 0, y + i * 32);
}

TARGET static void dequantize_f16_avx512(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_cvtph_ps(load256(x + i)));
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, k, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, x + i)));
    }
}

TARGET static void dequantize_bf16_avx512(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load256(x + i)), 16)));
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
        const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, x + i));
        _mm512_mask_storeu_ps(y + i, k, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
    }
}

void roost_register_avx512_legacy(roost_kernels *k) {
    k->quantize[ROOST_TYPE_Q8_0] = quantize_q8_0_avx512;
    k->quantize[ROOST_TYPE_Q8_1] = quantize_q8_1_avx512;

    k->dequantize[ROOST_TYPE_F16] = dequantize_f16_avx512;
    k->dequantize[ROOST_TYPE_BF16] = dequantize_bf16_avx512;
    k->dequantize[ROOST_TYPE_Q4_0] = dequantize_q4_0_avx512;
    k->dequantize[ROOST_TYPE_Q4_1] = dequantize_q4_1_avx512;
    k->dequantize[ROOST_TYPE_Q5_0] = dequantize_q5_0_avx512;
    k->dequantize[ROOST_TYPE_Q5_1] = dequantize_q5_1_avx512;
    k->dequantize[ROOST_TYPE_Q8_0] = dequantize_q8_0_avx512;
    k->dequantize[ROOST_TYPE_Q8_1] = dequantize_q8_1_avx512;

    k->gemv[ROOST_TYPE_F32] = gemv_f32_avx512;
    k->gemv[ROOST_TYPE_F16] = gemv_f16_avx512;
    k->gemv[ROOST_TYPE_BF16] = gemv_bf16_avx512;
    k->gemv[ROOST_TYPE_Q4_0] = gemv_q4_0_avx512;
    k->gemv[ROOST_TYPE_Q4_1] = gemv_q4_1_avx512;
    k->gemv[ROOST_TYPE_Q5_0] = gemv_q5_0_avx512;
    k->gemv[ROOST_TYPE_Q5_1] = gemv_q5_1_avx512;
    k->gemv[ROOST_TYPE_Q8_0] = gemv_q8_0_avx512;

    k->gemm[ROOST_TYPE_F32] = gemm_f32_avx512;
    k->gemm[ROOST_TYPE_F16] = gemm_f16_avx512;
    k->gemm[ROOST_TYPE_BF16] = gemm_bf16_avx512;
    k->gemm[ROOST_TYPE_Q4_0] = gemm_q4_0_avx512;
    k->gemm[ROOST_TYPE_Q4_1] = gemm_q4_1_avx512;
    k->gemm[ROOST_TYPE_Q5_0] = gemm_q5_0_avx512;
    k->gemm[ROOST_TYPE_Q5_1] = gemm_q5_1_avx512;
    k->gemm[ROOST_TYPE_Q8_0] = gemm_q8_0_avx512;
}

#else

void roost_register_avx512_legacy(roost_kernels *k) { (void)k; }

#endif
