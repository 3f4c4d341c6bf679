// AVX2 + FMA + F16C kernels: legacy quants (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 weights with
// Q8_0 / Q8_1 activations) and float weights (F32, F16, BF16 with F32 activations).
//
// Quantized dot products are bitwise the ref's (exact integer block sums, the ref's float
// combine in block order), so they do not depend on the path, the tile shape or the row
// split. Float-weight dots: every (weight row, activation row) pair owns its
// accumulators, updated in the same order by the same instructions whatever the tile
// shape, and is reduced by the same horizontal sum; gemm is bitwise gemv and gemv is
// bitwise the same for any row split.
#include "internal.h"

// The quantized combine must round each float operation separately, as the ref does.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#if defined(__x86_64__)

#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE float h2f(roost_half h) { return _cvtsh_ss(h); }

INLINE float fma1(float a, float b, float c) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

// 32 bits -> 32 bytes, byte j = 0xff when bit j is set.
INLINE __m256i bits_to_bytes(uint32_t bits) {
    const __m256i shuf = _mm256_setr_epi64x(0x0000000000000000LL, 0x0101010101010101LL,
                                            0x0202020202020202LL, 0x0303030303030303LL);
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), shuf);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, sel), sel);
}

// 16 bytes of packed nibbles -> 32 bytes: low nibbles (elements 0..15), then high
// nibbles (elements 16..31).
INLINE __m256i unpack_nibbles(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}

INLINE uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

// ---- one weight block -> 32 int8 values, scale, min ---------------------------------
// Q8_0 gives its signed values; the others give unsigned values in [0, 31]: Q4_0 and
// Q5_0 their stored codes q + 8 and q + 16 (the offset is taken off after the products,
// see dot_lanes), the _1 types their codes.

INLINE __m256i load_w(const int type, const char *b, float *d, float *m) {
    switch (type) {
    case ROOST_TYPE_Q4_0: {
        const block_q4_0 *x = (const block_q4_0 *)b;
        *d = h2f(x->d);
        return unpack_nibbles(x->qs); // q + 8, see offset_of()
    }
    case ROOST_TYPE_Q4_1: {
        const block_q4_1 *x = (const block_q4_1 *)b;
        *d = h2f(x->d);
        *m = h2f(x->m);
        return unpack_nibbles(x->qs);
    }
    case ROOST_TYPE_Q5_0: {
        const block_q5_0 *x = (const block_q5_0 *)b;
        *d = h2f(x->d);
        const __m256i hi = _mm256_and_si256(bits_to_bytes(load_u32(x->qh)), _mm256_set1_epi8(0x10));
        return _mm256_or_si256(unpack_nibbles(x->qs), hi); // q + 16, see offset_of()
    }
    case ROOST_TYPE_Q5_1: {
        const block_q5_1 *x = (const block_q5_1 *)b;
        *d = h2f(x->d);
        *m = h2f(x->m);
        const __m256i hi = _mm256_and_si256(bits_to_bytes(load_u32(x->qh)), _mm256_set1_epi8(0x10));
        return _mm256_or_si256(unpack_nibbles(x->qs), hi);
    }
    default: { // Q8_0
        const block_q8_0 *x = (const block_q8_0 *)b;
        *d = h2f(x->d);
        return _mm256_loadu_si256((const __m256i *)x->qs);
    }
    }
}

INLINE int has_min(const int type) { return type == ROOST_TYPE_Q4_1 || type == ROOST_TYPE_Q5_1; }

// The code offset of Q4_0 (8) and Q5_0 (16): value = code - offset.
INLINE int offset_of(const int type) {
    return type == ROOST_TYPE_Q4_0 ? 8 : type == ROOST_TYPE_Q5_0 ? 16 : 0;
}

// Per 4 consecutive activation bytes, offset times their sum: the correction that turns
// sums of code * a into sums of (code - offset) * a, lane for lane.
INLINE __m256i offset_correction(const int type, __m256i a) {
    const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), a), _mm256_set1_epi16(1));
    return _mm256_slli_epi32(sums, type == ROOST_TYPE_Q4_0 ? 3 : 4);
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

// 32 weight values x 32 activations -> 8 int32 sums of 4 consecutive products. The sums
// are exact and the same whichever way they are formed: uint8 codes with maddubs (no
// saturation: 31 * 127 * 2 < 2^15) minus the offset correction for Q4_0/Q5_0, plain for
// the _1 types; for Q8_0 the sign trick (|w| x sign(a, w); needs a != -128, which the
// quantizers never produce).
INLINE __m256i dot_lanes(const int type, __m256i q, __m256i a, __m256i corr) {
    const __m256i ones = _mm256_set1_epi16(1);
    if (type == ROOST_TYPE_Q8_0) {
        const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q));
        return _mm256_madd_epi16(p16, ones);
    }
    __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), ones);
    if (offset_of(type)) sums = _mm256_sub_epi32(sums, corr);
    return sums;
}

// w[r]: R weight rows, a[c]: C activation rows (Q8_0 or Q8_1 blocks, qs at offset 2 or 4)
// -> out[r * C + c]
// Exact int32 sums of the 8 lanes of each of p0..p3 -> [sum p0, sum p1, sum p2, sum p3].
INLINE __m128i reduce4(__m256i p0, __m256i p1, __m256i p2, __m256i p3) {
    const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

INLINE int32_t reduce1(__m256i p) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

// 4 fp16 values at p0..p3 (+ offset) -> 4 floats.
INLINE __m128 load_halves4(const char *const *p, size_t offset) {
    uint16_t h[4];
    for (int r = 0; r < 4; r++) memcpy(&h[r], p[r] + offset, 2);
    return _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)h));
}

// R weight rows x C activation rows: out[r * C + c] = dot(w[r], a[c]), bitwise the ref's
// value: per block the exact integer sum, then
//   acc = acc + ((float)isum * (dw * da) [+ mw * sa])
// in float, block after block, each operation rounded separately (as ref_legacy.c). With
// R = 4 the four rows' block sums are reduced together and combined in the lanes of one
// SSE vector; with R = 1 in scalar code; both give the ref's bits.
//
// pf: the start of the rows the next tile reads (or NULL); prefetched while this tile
// computes, because a tile reads R short row streams that hardware prefetchers pick up
// late.
INLINE void quant_tile(const int type, const int R, const int C, int64_t nb,
                       const char *const *w, const char *const *a, float *out, const char *pf) {
    const size_t ws = wblock_size(type);
    const int min = has_min(type);
    const size_t as = min ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t m_off = 2; // offset of m in block_q4_1 / block_q5_1
    __m128 acc4[4];
    float acc1[8];
    for (int c = 0; c < C; c++) {
        acc4[c] = _mm_setzero_ps();
        acc1[c] = 0.0f;
    }
    for (int64_t ib = 0; ib < nb; ib++) {
        __m256i q[4], av[4], corr[4];
        float dw[4], mw[4] = {0}, da[4], sa[4] = {0};
        if (pf) {
            // Spread the next tile's bytes over this tile's iterations, in address order.
            const char *p = pf + (size_t)ib * (size_t)R * ws;
            _mm_prefetch(p, _MM_HINT_T0);
            _mm_prefetch(p + 64, _MM_HINT_T0);
            if (R * ws > 128) _mm_prefetch(p + 128, _MM_HINT_T0);
        }
        for (int r = 0; r < R; r++) q[r] = load_w(type, w[r] + (size_t)ib * ws, &dw[r], &mw[r]);
        for (int c = 0; c < C; c++) {
            const char *b = a[c] + (size_t)ib * as;
            if (min) {
                const block_q8_1 *y = (const block_q8_1 *)b;
                da[c] = h2f(y->d);
                sa[c] = h2f(y->s);
                av[c] = _mm256_loadu_si256((const __m256i *)y->qs);
            } else {
                const block_q8_0 *y = (const block_q8_0 *)b;
                da[c] = h2f(y->d);
                av[c] = _mm256_loadu_si256((const __m256i *)y->qs);
            }
            corr[c] = offset_of(type) ? offset_correction(type, av[c]) : _mm256_setzero_si256();
        }
        if (R == 4) {
            const char *wb[4] = {w[0] + (size_t)ib * ws, w[1] + (size_t)ib * ws, w[2] + (size_t)ib * ws,
                                 w[3] + (size_t)ib * ws};
            const __m128 dw4 = load_halves4(wb, 0);
            const __m128 mw4 = min ? load_halves4(wb, m_off) : _mm_setzero_ps();
            for (int c = 0; c < C; c++) {
                const __m128i isum = reduce4(dot_lanes(type, q[0], av[c], corr[c]), dot_lanes(type, q[1], av[c], corr[c]),
                                             dot_lanes(type, q[2], av[c], corr[c]), dot_lanes(type, q[3], av[c], corr[c]));
                __m128 t = _mm_mul_ps(_mm_cvtepi32_ps(isum), _mm_mul_ps(dw4, _mm_set1_ps(da[c])));
                if (min) t = _mm_add_ps(t, _mm_mul_ps(mw4, _mm_set1_ps(sa[c])));
                acc4[c] = _mm_add_ps(acc4[c], t);
            }
        } else {
            for (int r = 0; r < R; r++)
                for (int c = 0; c < C; c++) {
                    const int32_t isum = reduce1(dot_lanes(type, q[r], av[c], corr[c]));
                    float t = (float)isum * (dw[r] * da[c]);
                    if (min) t = t + mw[r] * sa[c];
                    acc1[r * C + c] = acc1[r * C + c] + t;
                }
        }
    }
    if (R == 4) {
        for (int c = 0; c < C; c++) {
            float v[4];
            _mm_storeu_ps(v, acc4[c]);
            for (int r = 0; r < 4; r++) out[r * C + c] = v[r];
        }
    } else {
        for (int i = 0; i < R * C; i++) out[i] = acc1[i];
    }
}

// Q8_0 gemv, one row after the other: one sequential stream of weights, which hardware
// prefetchers follow without help (as avx512_legacy.c's gemv_lin; docs/PERFORMANCE.md).
// Per row, 4 blocks at a time: their exact sums through reduce4, (float)isum * (dw * da)
// in one SSE vector, then added to the row's accumulator in block order, as the ref does.
INLINE float lin_group4(float acc, const int m, const char *w, const char *a) {
    const size_t bs = sizeof(block_q8_0);
    __m256i p[4];
    const char *sw[4], *sa[4];
    for (int j = 0; j < 4; j++) {
        if (j < m) {
            sw[j] = w + (size_t)j * bs;
            sa[j] = a + (size_t)j * bs;
            p[j] = dot_lanes(ROOST_TYPE_Q8_0, _mm256_loadu_si256((const __m256i *)(sw[j] + offsetof(block_q8_0, qs))),
                             _mm256_loadu_si256((const __m256i *)(sa[j] + offsetof(block_q8_0, qs))),
                             _mm256_setzero_si256());
        } else {
            sw[j] = w;
            sa[j] = a;
            p[j] = _mm256_setzero_si256();
        }
    }
    const __m128 t = _mm_mul_ps(_mm_cvtepi32_ps(reduce4(p[0], p[1], p[2], p[3])),
                                _mm_mul_ps(load_halves4(sw, 0), load_halves4(sa, 0)));
    float tv[4];
    _mm_storeu_ps(tv, t);
    for (int k = 0; k < 4; k++)
        if (k < m) acc = acc + tv[k];
    return acc;
}

INLINE void q8_gemv_lin(int64_t n, int64_t nrows, const char *w, size_t row_bytes, const char *a, float *y) {
    const size_t bs = sizeof(block_q8_0);
    const int64_t nb = n / 32, full = nb & ~(int64_t)3;
    for (int64_t r = 0; r < nrows; r++) {
        const char *row = w + (size_t)r * row_bytes;
        float acc = 0.0f;
        for (int64_t g = 0; g < full; g += 4) acc = lin_group4(acc, 4, row + (size_t)g * bs, a + (size_t)g * bs);
        if (full < nb) acc = lin_group4(acc, (int)(nb - full), row + (size_t)full * bs, a + (size_t)full * bs);
        y[r] = acc;
    }
}

// Q8_0 rows one after the other (above); the other types in tiles of four rows.
INLINE void quant_gemv(const int type, int64_t n, int64_t nrows, const void *w,
                       size_t row_bytes, const void *a, float *y) {
    if (type == ROOST_TYPE_Q8_0) {
        q8_gemv_lin(n, nrows, w, row_bytes, a, y);
        return;
    }
    const int64_t nb = n / 32;
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

// Tiles of 4 rows x 2 columns (an odd last column: 4 x 1, gemv's tile), then 1 row x 2
// (or 1) columns. Rows outside, columns inside: a tile's rows are read from memory once
// (the first column pair prefetches the next tile) and stay in L1 for the other pairs.
INLINE void quant_gemm_small(const int type, int64_t n, int64_t nrows, const void *w,
                       size_t row_bytes, int64_t ncols, const void *a, size_t a_stride,
                       float *y, int64_t y_stride) {
    const int64_t nb = n / 32;
    const char *wb = w, *ab = a;
    float out[8];
    int64_t r = 0;
    for (; r + 4 <= nrows; r += 4) {
        const char *wp[4] = {wb + (size_t)r * row_bytes, wb + (size_t)(r + 1) * row_bytes,
                             wb + (size_t)(r + 2) * row_bytes, wb + (size_t)(r + 3) * row_bytes};
        const char *pf = r + 8 <= nrows ? wp[0] + 4 * row_bytes : NULL;
        int64_t c = 0;
        for (; c + 2 <= ncols; c += 2) {
            const char *ap[2] = {ab + (size_t)c * a_stride, ab + (size_t)(c + 1) * a_stride};
            quant_tile(type, 4, 2, nb, wp, ap, out, c == 0 ? pf : NULL);
            for (int i = 0; i < 4; i++) {
                y[c * y_stride + r + i] = out[i * 2];
                y[(c + 1) * y_stride + r + i] = out[i * 2 + 1];
            }
        }
        if (c < ncols) {
            const char *ap[1] = {ab + (size_t)c * a_stride};
            quant_tile(type, 4, 1, nb, wp, ap, y + c * y_stride + r, c == 0 ? pf : NULL);
        }
    }
    for (; r < nrows; r++) {
        const char *wp[1] = {wb + (size_t)r * row_bytes};
        int64_t c = 0;
        for (; c + 2 <= ncols; c += 2) {
            const char *ap[2] = {ab + (size_t)c * a_stride, ab + (size_t)(c + 1) * a_stride};
            quant_tile(type, 1, 2, nb, wp, ap, out, NULL);
            y[c * y_stride + r] = out[0];
            y[(c + 1) * y_stride + r] = out[1];
        }
        if (c < ncols) {
            const char *ap[1] = {ab + (size_t)c * a_stride};
            quant_tile(type, 1, 1, nb, wp, ap, y + c * y_stride + r, NULL);
        }
    }
}

// ---- gemm with repacked 8-row tiles --------------------------------------------------
// For many columns the weights of 8 rows are repacked once per K range (RP_KB blocks) so
// that no horizontal reduction is needed: per block, register k (k = 0..7) holds in int32
// lane r the 4 bytes of elements 4k..4k+3 of row r. An activation column's 4 bytes of the
// same elements are broadcast, and per k maddubs + madd leave in lane r exact partial
// sums of (row r, column):
//   Q8_0: the sign trick, |w| x sign(a, w) (a != -128, as the quantizers guarantee);
//   Q4_0/Q5_0/Q4_1/Q5_1: the unsigned codes (<= 31) x a, the int16 pair sums added over
//   k before one madd (8 x 2 x 15 x 128 and 4 x 2 x 31 x 128 stay below 2^15: exact),
//   and for Q4_0/Q5_0 the accumulator starts at -offset * sum(activation block).
// The float combine of the ref then runs in 8 lanes at once, block after block:
//   acc = acc + ((float)isum * (dw * da) [+ mw * sa]), each operation rounded separately.
// Across K ranges a column's 8 accumulators are kept in y (exact): the block order is
// the ref's and so are the results' bits.
#define UNROLL16 _Pragma("GCC unroll 16")
#define RP_KB 32  // blocks per K range
#define RP_CC 128 // columns per chunk (activation metadata buffer)

typedef struct {
    __m256i w[RP_KB][8];
    __m256i wabs[RP_KB][8]; // Q8_0: |w|
    __m256 dw[RP_KB], mw[RP_KB];
} rp_tile;

typedef struct {
    int32_t bias[RP_CC][RP_KB]; // -offset * sum(a block)
    float da[RP_CC][RP_KB], sa[RP_CC][RP_KB];
} rp_acts;

static _Thread_local rp_tile rp_tile_buf;
static _Thread_local rp_acts rp_acts_buf;

INLINE uint16_t rp_load_u16(const char *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE uint32_t rp_load_u32(const char *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE __m128i rp_load128(const char *p) { return _mm_loadu_si128((const __m128i *)p); }

INLINE size_t rp_qs_offset(const int type) {
    switch (type) {
    case ROOST_TYPE_Q4_0: return offsetof(block_q4_0, qs);
    case ROOST_TYPE_Q4_1: return offsetof(block_q4_1, qs);
    case ROOST_TYPE_Q5_0: return offsetof(block_q5_0, qs);
    case ROOST_TYPE_Q5_1: return offsetof(block_q5_1, qs);
    default: return offsetof(block_q8_0, qs);
    }
}

INLINE size_t rp_qh_offset(const int type) {
    return type == ROOST_TYPE_Q5_0 ? offsetof(block_q5_0, qh) : offsetof(block_q5_1, qh);
}

INLINE int rp_is_q5(const int type) { return type == ROOST_TYPE_Q5_0 || type == ROOST_TYPE_Q5_1; }

// Z0..Z3 (lane l of Zj = row 4l + j, dwords = element groups g0..g3) -> k[g] with
// dword 4l + j = row 4l + j.
INLINE void rp_transpose4(__m256i z0, __m256i z1, __m256i z2, __m256i z3, __m256i *k) {
    const __m256i t0 = _mm256_unpacklo_epi32(z0, z1), t1 = _mm256_unpackhi_epi32(z0, z1);
    const __m256i t2 = _mm256_unpacklo_epi32(z2, z3), t3 = _mm256_unpackhi_epi32(z2, z3);
    _mm256_store_si256(k + 0, _mm256_unpacklo_epi64(t0, t2));
    _mm256_store_si256(k + 1, _mm256_unpackhi_epi64(t0, t2));
    _mm256_store_si256(k + 2, _mm256_unpacklo_epi64(t1, t3));
    _mm256_store_si256(k + 3, _mm256_unpackhi_epi64(t1, t3));
}

// Repack 8 rows (row r at w + r * rb), blocks kb0 .. kb0 + nkb - 1.
INLINE void rp_repack(const int type, const char *w, size_t rb, int64_t kb0, int nkb, rp_tile *T) {
    const size_t ws = wblock_size(type);
    const size_t rb4 = 4 * rb;
    const size_t qo = rp_qs_offset(type);
    for (int kb = 0; kb < nkb; kb++) {
        const char *b = w + (size_t)(kb0 + kb) * ws;
        __m256i lo[4], hi[4];
        UNROLL16
        for (int j = 0; j < 4; j++) {
            const char *p = b + (size_t)j * rb; // rows j and j + 4
            if (type == ROOST_TYPE_Q8_0) {
                lo[j] = _mm256_set_m128i(rp_load128(p + rb4 + qo), rp_load128(p + qo));
                hi[j] = _mm256_set_m128i(rp_load128(p + rb4 + qo + 16), rp_load128(p + qo + 16));
            } else {
                const __m256i q = _mm256_set_m128i(rp_load128(p + rb4 + qo), rp_load128(p + qo));
                lo[j] = _mm256_and_si256(q, _mm256_set1_epi8(0x0f));
                hi[j] = _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(0x0f));
                if (rp_is_q5(type)) {
                    const uint32_t h0 = rp_load_u32(p + rp_qh_offset(type)), h1 = rp_load_u32(p + rb4 + rp_qh_offset(type));
                    const __m256i b16 = _mm256_set1_epi8(0x10);
                    lo[j] = _mm256_or_si256(lo[j], _mm256_and_si256(bits_to_bytes((h0 & 0xffffu) | (h1 << 16)), b16));
                    hi[j] = _mm256_or_si256(hi[j], _mm256_and_si256(bits_to_bytes((h0 >> 16) | (h1 & 0xffff0000u)), b16));
                }
            }
        }
        rp_transpose4(lo[0], lo[1], lo[2], lo[3], &T->w[kb][0]);
        rp_transpose4(hi[0], hi[1], hi[2], hi[3], &T->w[kb][4]);
        if (type == ROOST_TYPE_Q8_0) {
            UNROLL16
            for (int k = 0; k < 8; k++) {
                const __m256i v = _mm256_load_si256(&T->w[kb][k]);
                _mm256_store_si256(&T->wabs[kb][k], _mm256_sign_epi8(v, v));
            }
        }
        uint16_t d[8], m[8];
        UNROLL16
        for (int r = 0; r < 8; r++) {
            d[r] = rp_load_u16(b + (size_t)r * rb);
            if (has_min(type)) m[r] = rp_load_u16(b + (size_t)r * rb + 2);
        }
        T->dw[kb] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)d));
        if (has_min(type)) T->mw[kb] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)m));
    }
}

// Activation metadata of columns a + c * a_stride (c < C), blocks kb0 .. kb0 + nkb - 1.
INLINE void rp_acts_fill(const int type, const char *a, size_t a_stride, int64_t C, int64_t kb0, int nkb,
                         rp_acts *A) {
    const int min = has_min(type);
    const size_t as = min ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t qoff = min ? offsetof(block_q8_1, qs) : offsetof(block_q8_0, qs);
    const int off = offset_of(type);
    for (int64_t c = 0; c < C; c++) {
        const char *col = a + (size_t)c * a_stride + (size_t)kb0 * as;
        for (int kb = 0; kb < nkb; kb++) {
            const char *b = col + (size_t)kb * as;
            A->da[c][kb] = h2f(rp_load_u16(b));
            if (min) A->sa[c][kb] = h2f(rp_load_u16(b + 2));
            if (off) {
                // sum of (a + 128) by psadbw, minus 32 * 128
                const __m256i s = _mm256_sad_epu8(
                    _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(b + qoff)), _mm256_set1_epi8((char)0x80)),
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

// C columns (c0.. of the chunk, activations at a + c * a_stride pointing at block kb0's
// qs) x the 8 rows of T, blocks 0 .. nkb - 1 of the range; accumulators in
// y[c * y_stride + 0..7].
INLINE void rp_cols(const int type, const int C, int first, int nkb, const rp_tile *T, const rp_acts *A,
                    int c0, const char *a, size_t a_stride, float *y, int64_t y_stride) {
    const int min = has_min(type);
    const size_t as = min ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const __m256i ones = _mm256_set1_epi16(1);
    const char *ap[4];
    __m256 acc[4];
    UNROLL16
    for (int c = 0; c < C; c++) {
        ap[c] = a + (size_t)c * a_stride;
        acc[c] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(y + c * y_stride);
    }
    for (int kb = 0; kb < nkb; kb++) {
        __m256i s[4];
        if (type == ROOST_TYPE_Q8_0) {
            UNROLL16
            for (int c = 0; c < C; c++) s[c] = _mm256_setzero_si256();
            UNROLL16
            for (int k = 0; k < 8; k++) {
                const __m256i wk = _mm256_load_si256(&T->w[kb][k]);
                const __m256i wa = _mm256_load_si256(&T->wabs[kb][k]);
                UNROLL16
                for (int c = 0; c < C; c++) {
                    const __m256i ab = _mm256_set1_epi32((int)rp_load_u32(ap[c] + (size_t)kb * as + 4 * k));
                    s[c] = _mm256_add_epi32(s[c], _mm256_madd_epi16(_mm256_maddubs_epi16(wa, _mm256_sign_epi8(ab, wk)), ones));
                }
            }
        } else {
            // int16 partial sums over G = 8 (Q4) or 4 (Q5) element groups, then one madd
            const int G = rp_is_q5(type) ? 4 : 8;
            UNROLL16
            for (int c = 0; c < C; c++) s[c] = _mm256_set1_epi32(A->bias[c0 + c][kb]);
            UNROLL16
            for (int k0 = 0; k0 < 8; k0 += G) {
                __m256i p[4];
                UNROLL16
                for (int k = k0; k < k0 + G; k++) {
                    const __m256i wk = _mm256_load_si256(&T->w[kb][k]);
                    UNROLL16
                    for (int c = 0; c < C; c++) {
                        const __m256i ab = _mm256_set1_epi32((int)rp_load_u32(ap[c] + (size_t)kb * as + 4 * k));
                        const __m256i q = _mm256_maddubs_epi16(wk, ab);
                        p[c] = k == k0 ? q : _mm256_add_epi16(p[c], q);
                    }
                }
                UNROLL16
                for (int c = 0; c < C; c++) s[c] = _mm256_add_epi32(s[c], _mm256_madd_epi16(p[c], ones));
            }
        }
        const __m256 dw = T->dw[kb];
        UNROLL16
        for (int c = 0; c < C; c++) {
            __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(s[c]), _mm256_mul_ps(dw, _mm256_set1_ps(A->da[c0 + c][kb])));
            if (min) t = _mm256_add_ps(t, _mm256_mul_ps(T->mw[kb], _mm256_set1_ps(A->sa[c0 + c][kb])));
            acc[c] = _mm256_add_ps(acc[c], t);
        }
    }
    UNROLL16
    for (int c = 0; c < C; c++) _mm256_storeu_ps(y + c * y_stride, acc[c]);
}

// nrows8 (a multiple of 8) rows x ncols columns by repacked tiles.
INLINE void quant_gemm_repacked(const int type, int64_t nb, int64_t nrows8, const char *w, size_t row_bytes,
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
            for (int64_t r = 0; r < nrows8; r += 8) {
                rp_repack(type, w + (size_t)r * row_bytes, row_bytes, kb0, nkb, T);
                float *yt = y + c0 * y_stride + r;
                int c = 0;
                for (; c + 4 <= cc; c += 4)
                    rp_cols(type, 4, kb0 == 0, nkb, T, A, c, aq + (size_t)c * a_stride, a_stride, yt + c * y_stride, y_stride);
                for (; c < cc; c++)
                    rp_cols(type, 1, kb0 == 0, nkb, T, A, c, aq + (size_t)c * a_stride, a_stride, yt + c * y_stride, y_stride);
            }
        }
    }
}

// Repacked 8-row tiles when there are enough columns; the rest (rows past a multiple of
// 8, few columns) by the tiles above.
INLINE void quant_gemm(const int type, int64_t n, int64_t nrows, const void *w,
                       size_t row_bytes, int64_t ncols, const void *a, size_t a_stride,
                       float *y, int64_t y_stride) {
    const int64_t nrows8 = nrows & ~(int64_t)7;
    // (Q8_0's sign trick costs more per step: its repacked tiles pay off from 6 columns)
    if (ncols < (type == ROOST_TYPE_Q8_0 ? 6 : 4) || nrows8 == 0) {
        quant_gemm_small(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);
        return;
    }
    quant_gemm_repacked(type, n / 32, nrows8, w, row_bytes, ncols, a, a_stride, y, y_stride);
    if (nrows8 < nrows)
        quant_gemm_small(type, n, nrows - nrows8, (const char *)w + (size_t)nrows8 * row_bytes, row_bytes, ncols, a,
                         a_stride, y + nrows8, y_stride);
}

#define QUANT_KERNELS(name, type)                                                             \
    TARGET static void gemv_##name##_avx2(int64_t n, int64_t nrows, const void *w,           \
                                          size_t row_bytes, const void *a, float *y) {       \
        quant_gemv(type, n, nrows, w, row_bytes, a, y);                                      \
    }                                                                                        \
    TARGET static void gemm_##name##_avx2(int64_t n, int64_t nrows, const void *w,           \
                                          size_t row_bytes, int64_t ncols, const void *a,    \
                                          size_t a_stride, float *y, int64_t y_stride) {     \
        quant_gemm(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);           \
    }

QUANT_KERNELS(q4_0, ROOST_TYPE_Q4_0)
QUANT_KERNELS(q4_1, ROOST_TYPE_Q4_1)
QUANT_KERNELS(q5_0, ROOST_TYPE_Q5_0)
QUANT_KERNELS(q5_1, ROOST_TYPE_Q5_1)
QUANT_KERNELS(q8_0, ROOST_TYPE_Q8_0)

// ---- float weights ------------------------------------------------------------------

INLINE __m256 load_f8(const int type, const char *row, int64_t i) {
    switch (type) {
    case ROOST_TYPE_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + i * 2)));
    case ROOST_TYPE_BF16: {
        const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(row + i * 2)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    }
    default:
        return _mm256_loadu_ps((const float *)(row + i * 4));
    }
}

INLINE float load_f1(const int type, const char *row, int64_t i) {
    uint16_t h;
    switch (type) {
    case ROOST_TYPE_F16:
        memcpy(&h, row + i * 2, 2);
        return h2f(h);
    case ROOST_TYPE_BF16:
        memcpy(&h, row + i * 2, 2);
        return roost_bf16_to_fp32(h);
    default: {
        float f;
        memcpy(&f, row + i * 4, 4);
        return f;
    }
    }
}

// Per (row, column): two vector accumulators over 16-element steps, an 8-element step
// into the first, a scalar tail; result = hsum(acc0 + acc1) + tail.
// pf: the start of the rows the next tile reads, or NULL. Short rows (a few KB) end
// before hardware prefetchers have picked up their streams, so gemv prefetches the next
// tile's rows, spread over this tile's iterations in address order; long rows do not
// need it (and were slower with it).
INLINE void float_tile(const int type, const int R, const int C, int64_t n,
                       const char *const *w, const float *const *a, float *out, const char *pf) {
    const int esize = type == ROOST_TYPE_F32 ? 4 : 2;
    __m256 acc0[4][2], acc1[4][2];
    float tail[4][2];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            acc0[r][c] = _mm256_setzero_ps();
            acc1[r][c] = _mm256_setzero_ps();
            tail[r][c] = 0.0f;
        }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        if (pf) {
            const char *p = pf + (size_t)(i / 16) * (size_t)(R * 16 * esize);
            for (int o = 0; o < R * 16 * esize; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
        }
        __m256 x0[2], x1[2];
        for (int c = 0; c < C; c++) {
            x0[c] = _mm256_loadu_ps(a[c] + i);
            x1[c] = _mm256_loadu_ps(a[c] + i + 8);
        }
        for (int r = 0; r < R; r++) {
            const __m256 w0 = load_f8(type, w[r], i);
            const __m256 w1 = load_f8(type, w[r], i + 8);
            for (int c = 0; c < C; c++) {
                acc0[r][c] = _mm256_fmadd_ps(w0, x0[c], acc0[r][c]);
                acc1[r][c] = _mm256_fmadd_ps(w1, x1[c], acc1[r][c]);
            }
        }
    }
    if (i + 8 <= n) {
        for (int r = 0; r < R; r++) {
            const __m256 w0 = load_f8(type, w[r], i);
            for (int c = 0; c < C; c++)
                acc0[r][c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(a[c] + i), acc0[r][c]);
        }
        i += 8;
    }
    for (; i < n; i++)
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++)
                tail[r][c] = fma1(load_f1(type, w[r], i), a[c][i], tail[r][c]);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            out[r * C + c] = hsum8(_mm256_add_ps(acc0[r][c], acc1[r][c])) + tail[r][c];
}

// Rows up to 8 KiB of F16 / BF16 and 4 KiB of F32 are read one after the other: one
// sequential stream, which hardware prefetchers follow (four rows side by side needed
// software prefetches and still read slower; docs/PERFORMANCE.md). Longer rows go four at
// a time, each row its own stream (F32 rows of 16-32 KiB and F16 rows of 16 KiB measured
// slower one at a time). A row's arithmetic is the same either way.
INLINE void float_gemv(const int type, int64_t n, int64_t nrows, const void *w,
                       size_t row_bytes, const void *a, float *y) {
    const char *wb = w;
    const float *ap[1] = {a};
    int64_t r = 0;
    if (row_bytes > (type == ROOST_TYPE_F32 ? 4096u : 8192u))
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
// column) pair keeps gemv's accumulators and gemv's FMA sequence: the K ranges are
// multiples of 16 elements and the accumulators are stored and reloaded between ranges
// (exact), the last range adds gemv's 8-element step, scalar tail and horizontal sum.
// So every output is bitwise float_tile's (gemv's) for that row and column.
#define FG_R 3     // rows per tile (and per converted block); fg_tile_3xC below
#define FG_C 2     // columns per register tile: 2 x 3 x 2 accumulators + 2 activations
#define FG_KC 1024 // elements per K range (multiple of 16)
#define FG_PC 64   // columns per panel (accumulator state buffer)

#define FG_UNROLL _Pragma("GCC unroll 4")

static _Thread_local float fg_ws[FG_R][FG_KC + 16] __attribute__((aligned(32)));
static _Thread_local __m256 fg_state[FG_PC * FG_R * 2];

// R rows x C columns over one K range of len (a multiple of 16) elements: ws[r] and a[c]
// point at the range's first element. st: the pairs' accumulators, pair (r, c) at
// st[(c * FG_R + r) * 2]; first: start from zero, else load them; last: finish (tail
// elements follow the range: tail = n % 16) and write y[c * y_stride + r], else store.
INLINE void fg_tile(const int R, const int C, int64_t len, const float *const *ws, const float *const *a,
                    __m256 *st, int first, int last, int64_t tail, float *y, int64_t y_stride) {
    __m256 acc0[FG_R][FG_C], acc1[FG_R][FG_C];
    FG_UNROLL
    for (int r = 0; r < R; r++)
        FG_UNROLL
        for (int c = 0; c < C; c++) {
            acc0[r][c] = first ? _mm256_setzero_ps() : st[(c * FG_R + r) * 2];
            acc1[r][c] = first ? _mm256_setzero_ps() : st[(c * FG_R + r) * 2 + 1];
        }
    for (int64_t i = 0; i < len; i += 16) {
        __m256 x[FG_C];
        FG_UNROLL
        for (int c = 0; c < C; c++) x[c] = _mm256_loadu_ps(a[c] + i);
        FG_UNROLL
        for (int r = 0; r < R; r++) {
            const __m256 w0 = _mm256_loadu_ps(ws[r] + i);
            FG_UNROLL
            for (int c = 0; c < C; c++) acc0[r][c] = _mm256_fmadd_ps(w0, x[c], acc0[r][c]);
        }
        FG_UNROLL
        for (int c = 0; c < C; c++) x[c] = _mm256_loadu_ps(a[c] + i + 8);
        FG_UNROLL
        for (int r = 0; r < R; r++) {
            const __m256 w1 = _mm256_loadu_ps(ws[r] + i + 8);
            FG_UNROLL
            for (int c = 0; c < C; c++) acc1[r][c] = _mm256_fmadd_ps(w1, x[c], acc1[r][c]);
        }
    }
    if (!last) {
        FG_UNROLL
        for (int r = 0; r < R; r++)
            FG_UNROLL
            for (int c = 0; c < C; c++) {
                st[(c * FG_R + r) * 2] = acc0[r][c];
                st[(c * FG_R + r) * 2 + 1] = acc1[r][c];
            }
        return;
    }
    int64_t i = len;
    if (tail >= 8) {
        FG_UNROLL
        for (int r = 0; r < R; r++) {
            const __m256 w0 = _mm256_loadu_ps(ws[r] + i);
            FG_UNROLL
            for (int c = 0; c < C; c++) acc0[r][c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(a[c] + i), acc0[r][c]);
        }
        i += 8;
    }
    FG_UNROLL
    for (int r = 0; r < R; r++)
        FG_UNROLL
        for (int c = 0; c < C; c++) {
            float t = 0.0f;
            for (int64_t j = i; j < len + tail; j++) t = fma1(ws[r][j], a[c][j], t);
            y[c * y_stride + r] = hsum8(_mm256_add_ps(acc0[r][c], acc1[r][c])) + t;
        }
}

#define FG_TILE(R, C)                                                                              \
    TARGET __attribute__((noinline)) static void fg_tile_##R##x##C(                               \
        int64_t len, const float *const *ws, const float *const *a, __m256 *st, int first, int last, \
        int64_t tail, float *y, int64_t y_stride) {                                                \
        fg_tile(R, C, len, ws, a, st, first, last, tail, y, y_stride);                             \
    }
FG_TILE(3, 1)
FG_TILE(3, 2)
FG_TILE(1, 1)
FG_TILE(1, 2)

// Few columns: tiles straight from the stored weights (converting them for the scratch
// costs more than it saves).
INLINE void float_gemm_small(const int type, int64_t n, int64_t nrows, const void *w,
                       size_t row_bytes, int64_t ncols, const void *a, size_t a_stride,
                       float *y, int64_t y_stride) {
    const char *wb = w, *ab = a;
    // Rows outside, columns inside: a tile's rows are read from memory once and stay in
    // L1 for the other column pairs (an odd last column runs as a 2 x 1 tile).
    float out[4];
    int64_t r = 0;
    for (; r + 2 <= nrows; r += 2) {
        const char *wp[2] = {wb + (size_t)r * row_bytes, wb + (size_t)(r + 1) * row_bytes};
        // the first column pair prefetches the next tile's rows, as the gemv does
        const char *pf = row_bytes <= 4096 && r + 4 <= nrows ? wp[0] + 2 * row_bytes : NULL;
        int64_t c = 0;
        for (; c + 2 <= ncols; c += 2) {
            const float *ap[2] = {(const float *)(ab + (size_t)c * a_stride),
                                  (const float *)(ab + (size_t)(c + 1) * a_stride)};
            float_tile(type, 2, 2, n, wp, ap, out, c == 0 ? pf : NULL);
            y[c * y_stride + r] = out[0];
            y[(c + 1) * y_stride + r] = out[1];
            y[c * y_stride + r + 1] = out[2];
            y[(c + 1) * y_stride + r + 1] = out[3];
        }
        if (c < ncols) {
            const float *ap[1] = {(const float *)(ab + (size_t)c * a_stride)};
            float_tile(type, 2, 1, n, wp, ap, y + c * y_stride + r, c == 0 ? pf : NULL);
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

typedef void (*fg_tile_fn)(int64_t, const float *const *, const float *const *, __m256 *, int, int, int64_t,
                           float *, int64_t);

INLINE void float_gemm(const int type, int64_t n, int64_t nrows, const void *w,
                       size_t row_bytes, int64_t ncols, const void *a, size_t a_stride,
                       float *y, int64_t y_stride) {
    const char *wb = w, *ab = a;
    if (ncols < 4) {
        float_gemm_small(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);
        return;
    }
    static const fg_tile_fn tiles[2][FG_C] = {{fg_tile_1x1, fg_tile_1x2}, {fg_tile_3x1, fg_tile_3x2}};
    const int64_t n16 = n & ~(int64_t)15, tail = n - n16;
    const int64_t nk = n16 == 0 ? 1 : (n16 + FG_KC - 1) / FG_KC;
    for (int64_t c0 = 0; c0 < ncols; c0 += FG_PC) {
        const int64_t pc = ncols - c0 < FG_PC ? ncols - c0 : FG_PC;
        for (int64_t r0 = 0; r0 < nrows;) {
            const int R = nrows - r0 >= FG_R ? FG_R : 1;
            for (int64_t kk = 0; kk < nk; kk++) {
                const int64_t k0 = kk * FG_KC, len = n16 - k0 < FG_KC ? n16 - k0 : FG_KC;
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
                    for (; j < len; j += 8) _mm256_store_ps(s + j, load_f8(type, row, k0 + j));
                    if (last) {
                        if (tail >= 8) {
                            _mm256_store_ps(s + j, load_f8(type, row, k0 + j));
                            j += 8;
                        }
                        for (; j < len + tail; j++) s[j] = load_f1(type, row, k0 + j);
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
    TARGET static void gemv_##name##_avx2(int64_t n, int64_t nrows, const void *w,           \
                                          size_t row_bytes, const void *a, float *y) {       \
        float_gemv(type, n, nrows, w, row_bytes, a, y);                                      \
    }                                                                                        \
    TARGET static void gemm_##name##_avx2(int64_t n, int64_t nrows, const void *w,           \
                                          size_t row_bytes, int64_t ncols, const void *a,    \
                                          size_t a_stride, float *y, int64_t y_stride) {     \
        float_gemm(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);           \
    }

FLOAT_KERNELS(f32, ROOST_TYPE_F32)
FLOAT_KERNELS(f16, ROOST_TYPE_F16)
FLOAT_KERNELS(bf16, ROOST_TYPE_BF16)

// ---- activation quantizers: bitwise equal to the ref ones ---------------------------

// roundf (half away from zero) of |v| < 2^23, exactly: trunc, then step away from zero
// when the dropped fraction is at least one half.
INLINE __m256 round_away(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
    const __m256 absf = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t));
    const __m256 step = _mm256_and_ps(_mm256_cmp_ps(absf, _mm256_set1_ps(0.5f), _CMP_GE_OQ),
                                      _mm256_or_ps(sign, _mm256_set1_ps(1.0f)));
    return _mm256_add_ps(t, step);
}

// 32 floats -> 32 int8 (in element order) and their scale.
INLINE __m256i quant32(const float *x, float *dout) {
    const __m256 absmask = _mm256_set1_ps(-0.0f);
    __m256 v[4];
    __m256 mx = _mm256_setzero_ps();
    for (int j = 0; j < 4; j++) {
        v[j] = _mm256_loadu_ps(x + 8 * j);
        mx = _mm256_max_ps(mx, _mm256_andnot_ps(absmask, v[j]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *dout = d;
    const __m256 idv = _mm256_set1_ps(id);
    __m256i i32[4];
    for (int j = 0; j < 4; j++) i32[j] = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v[j], idv)));
    // pack 32 -> 16 -> 8 bits; packs interleave 128-bit lanes, fixed by a permute
    const __m256i p01 = _mm256_packs_epi32(i32[0], i32[1]);
    const __m256i p23 = _mm256_packs_epi32(i32[2], i32[3]);
    const __m256i p = _mm256_packs_epi16(p01, p23);
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

TARGET static void quantize_q8_0_avx2(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        float d;
        const __m256i q = quant32(x + i * QK8_0, &d);
        y[i].d = roost_fp32_to_fp16(d);
        _mm256_storeu_si256((__m256i *)y[i].qs, q);
    }
}

TARGET static void quantize_q8_1_avx2(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        float d;
        const __m256i q = quant32(x + i * QK8_1, &d);
        y[i].d = roost_fp32_to_fp16(d);
        _mm256_storeu_si256((__m256i *)y[i].qs, q);
        const __m256i s32 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q),
                                              _mm256_set1_epi16(1));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        y[i].s = roost_fp32_to_fp16((float)_mm_cvtsi128_si32(s4) * d);
    }
}

// ---- dequantize: bitwise equal to the ref ones --------------------------------------

INLINE void store_i8x32(const __m256i q, const __m256 d, const __m256 m, const int add_m, float *y) {
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int j = 0; j < 4; j++) {
        __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[j])), d);
        if (add_m) f = _mm256_add_ps(f, m);
        _mm256_storeu_ps(y + 8 * j, f);
    }
}

#define QUANT_DEQUANT(name, type, bsize)                                                     \
    TARGET static void dequantize_##name##_avx2(const void *vx, float *y, int64_t n) {      \
        const char *x = vx;                                                                 \
        for (int64_t i = 0; i < n / 32; i++) {                                              \
            float d, m = 0.0f;                                                              \
            const __m256i q = _mm256_sub_epi8(load_w(type, x + (size_t)i * (bsize), &d, &m), \
                                              _mm256_set1_epi8((char)offset_of(type)));     \
            store_i8x32(q, _mm256_set1_ps(d), _mm256_set1_ps(m), has_min(type), y + i * 32); \
        }                                                                                   \
    }

QUANT_DEQUANT(q4_0, ROOST_TYPE_Q4_0, sizeof(block_q4_0))
QUANT_DEQUANT(q4_1, ROOST_TYPE_Q4_1, sizeof(block_q4_1))
QUANT_DEQUANT(q5_0, ROOST_TYPE_Q5_0, sizeof(block_q5_0))
QUANT_DEQUANT(q5_1, ROOST_TYPE_Q5_1, sizeof(block_q5_1))
QUANT_DEQUANT(q8_0, ROOST_TYPE_Q8_0, sizeof(block_q8_0))

TARGET static void dequantize_q8_1_avx2(const void *vx, float *y, int64_t n) {
    const block_q8_1 *x = vx;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)x[i].qs);
        store_i8x32(q, _mm256_set1_ps(h2f(x[i].d)), _mm256_setzero_ps(), 0, y + i * 32);
    }
}

TARGET static void dequantize_f16_avx2(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = h2f(x[i]);
}

TARGET static void dequantize_bf16_avx2(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
    for (; i < n; i++) y[i] = roost_bf16_to_fp32(x[i]);
}

void roost_register_avx2_legacy(roost_kernels *k) {
    k->quantize[ROOST_TYPE_Q8_0] = quantize_q8_0_avx2;
    k->quantize[ROOST_TYPE_Q8_1] = quantize_q8_1_avx2;

    k->dequantize[ROOST_TYPE_F16] = dequantize_f16_avx2;
    k->dequantize[ROOST_TYPE_BF16] = dequantize_bf16_avx2;
    k->dequantize[ROOST_TYPE_Q4_0] = dequantize_q4_0_avx2;
    k->dequantize[ROOST_TYPE_Q4_1] = dequantize_q4_1_avx2;
    k->dequantize[ROOST_TYPE_Q5_0] = dequantize_q5_0_avx2;
    k->dequantize[ROOST_TYPE_Q5_1] = dequantize_q5_1_avx2;
    k->dequantize[ROOST_TYPE_Q8_0] = dequantize_q8_0_avx2;
    k->dequantize[ROOST_TYPE_Q8_1] = dequantize_q8_1_avx2;

    k->gemv[ROOST_TYPE_F32] = gemv_f32_avx2;
    k->gemv[ROOST_TYPE_F16] = gemv_f16_avx2;
    k->gemv[ROOST_TYPE_BF16] = gemv_bf16_avx2;
    k->gemv[ROOST_TYPE_Q4_0] = gemv_q4_0_avx2;
    k->gemv[ROOST_TYPE_Q4_1] = gemv_q4_1_avx2;
    k->gemv[ROOST_TYPE_Q5_0] = gemv_q5_0_avx2;
    k->gemv[ROOST_TYPE_Q5_1] = gemv_q5_1_avx2;
    k->gemv[ROOST_TYPE_Q8_0] = gemv_q8_0_avx2;

    k->gemm[ROOST_TYPE_F32] = gemm_f32_avx2;
    k->gemm[ROOST_TYPE_F16] = gemm_f16_avx2;
    k->gemm[ROOST_TYPE_BF16] = gemm_bf16_avx2;
    k->gemm[ROOST_TYPE_Q4_0] = gemm_q4_0_avx2;
    k->gemm[ROOST_TYPE_Q4_1] = gemm_q4_1_avx2;
    k->gemm[ROOST_TYPE_Q5_0] = gemm_q5_0_avx2;
    k->gemm[ROOST_TYPE_Q5_1] = gemm_q5_1_avx2;
    k->gemm[ROOST_TYPE_Q8_0] = gemm_q8_0_avx2;
}

#else

void roost_register_avx2_legacy(roost_kernels *k) { (void)k; }

#endif
