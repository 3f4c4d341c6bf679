// AVX-512 (F/BW/VL) + VNNI kernels for the K-quants: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K weights
// with Q8_K activations (gemv and gemm). Q8_K quantize and the dequantizers are left to
// the AVX2 table (dispatch.c fills NULL entries from it).
//
// Results are bitwise the ref's (ref_kquants.c): per super-block and (weight row,
// activation row) pair the exact integer isum (and msum), then the ref's float combine
//   acc = acc + ((d * a.d) * (float)isum [- (dmin * a.d) * (float)msum])
// with every operation rounded separately, super-block after super-block. So gemm is
// bitwise gemv, and gemv is bitwise the same for any row split and tile shape (2 or 4
// rows x 1 column in gemv, 4 x 2 in gemm, 1 row x C columns for row remainders; for 8 or
// more columns gemm uses repacked 16-row tiles, see "gemm with repacked 16-row tiles").
//
// Integer part, per super-block and pair:
//   - the 256 weight values are unpacked into 4 registers of 64 unsigned bytes ("codes"):
//     Q2_K q, Q3_K q + 4 (its two low bits and the hmask bit as stored), Q4_K / Q5_K q,
//     Q6_K q + 32; the activations are loaded in the matching element order (per column,
//     shared by the tile's rows);
//   - vpdpbusd (VNNI: code x activation, 4 products summed per int32 lane) with each
//     128-bit lane inside one scale group; for Q3_K / Q6_K the lanes start from a per-column
//     bias of -offset * (sum of the lane's 4 activations), so they hold sums of q x a;
//   - two such registers packed to int16 (exact: |lane| <= 4 * 63 * 128 < 2^15), then
//     pmaddwd / vpdpwssd with the group scales as int16 lanes -> 16 int32 lanes -> 4;
//   - Q2_K / Q4_K / Q5_K: msum = sum m * bsums by pmaddwd (Q4_K / Q5_K: the Q8_K bsums
//     summed in pairs to match the groups of 32) -> 4 lanes;
//   - two pairs at a time: hadd -> [isum0, isum1, msum0, msum1], then the float combine
//     in the lanes of one SSE vector.
//
// Each gemv / gemm tile prefetches the rows of the next tile, spread over its own
// super-block iterations (a tile reads R short row streams that the hardware prefetchers
// pick up late).
#include "internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

// The ref's float combine: products, difference and sum rounded separately, never fused.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

// The tile loops over rows / columns must be unrolled so that the accumulators live in
// registers (gcc -O2 does not unroll them by itself).
#define UNROLL _Pragma("GCC unroll 8")

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,fma,f16c")))
#define INLINE                                                                                       \
    static inline __attribute__((always_inline,                                                      \
                                 target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,fma,f16c")))

INLINE uint32_t load_u32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE __m512i load512(const void *p) { return _mm512_loadu_si512(p); }
INLINE __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
INLINE __m128i load128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

// 32 bytes at p, then 32 bytes at q.
INLINE __m512i load_2x256(const void *p, const void *q) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(load256(p)), load256(q), 1);
}

// (h & m) | n, bitwise
INLINE __m512i and_or(__m512i h, __m512i m, __m512i n) { return _mm512_ternarylogic_epi32(h, m, n, 0xea); }

// Index vector for vpermw over the packed lane sums (see pair_sums): in 128-bit lane L,
// int16 lanes 0..3 take scale a[L], lanes 4..7 scale b[L].
INLINE __m512i pack_idx(const int a[4], const int b[4]) {
    const long long k = 0x0001000100010001LL;
    return _mm512_setr_epi64(a[0] * k, b[0] * k, a[1] * k, b[1] * k, a[2] * k, b[2] * k, a[3] * k, b[3] * k);
}

// Per-qword rotate counts: the low 256 bits by c0, the high 256 bits by c1 (mod 64).
INLINE __m512i rot2(int c0, int c1) {
    return _mm512_setr_epi64(c0 & 63, c0 & 63, c0 & 63, c0 & 63, c1 & 63, c1 & 63, c1 & 63, c1 & 63);
}

// ---- per-type layout ----------------------------------------------------------------

INLINE size_t wsize(const int type) {
    switch (type) {
    case ROOST_TYPE_Q2_K: return sizeof(block_q2_K);
    case ROOST_TYPE_Q3_K: return sizeof(block_q3_K);
    case ROOST_TYPE_Q4_K: return sizeof(block_q4_K);
    case ROOST_TYPE_Q5_K: return sizeof(block_q5_K);
    default: return sizeof(block_q6_K);
    }
}

INLINE int is_q45(const int type) { return type == ROOST_TYPE_Q4_K || type == ROOST_TYPE_Q5_K; }

// Types with a min term (dmin * m * bsums).
INLINE int has_min(const int type) { return type == ROOST_TYPE_Q2_K || is_q45(type); }

// Element order of the weight registers (the activations follow it), and the scale group
// of 128-bit lane L of register k:
//   Q2_K, Q3_K: register k = elements [32k, 32k + 32) then [128 + 32k, 128 + 32k + 32)
//               -> groups of 16: 2k, 2k + 1, 8 + 2k, 9 + 2k
//   Q4_K, Q5_K: register k = elements [128 (k/2) + 32 (k%2), +32) then the 32 from 64 on
//               -> groups of 32: g, g, g + 2, g + 2 with g = 4 (k/2) + k%2
//   Q6_K:       register k = elements [64k, 64k + 64) -> groups of 16: 4k .. 4k + 3
INLINE int group_of(const int type, int k, int L) {
    if (type == ROOST_TYPE_Q2_K || type == ROOST_TYPE_Q3_K) return 8 * (L >> 1) + 2 * k + (L & 1);
    if (is_q45(type)) return 4 * (k >> 1) + (k & 1) + 2 * (L >> 1);
    return 4 * k + L;
}

// vpermw index of the scales of packed register j (weight registers 2j and 2j + 1).
INLINE __m512i scale_idx(const int type, int j) {
    int a[4], b[4];
    for (int L = 0; L < 4; L++) {
        a[L] = group_of(type, 2 * j, L);
        b[L] = group_of(type, 2 * j + 1, L);
    }
    return pack_idx(a, b);
}

// One super-block of one weight row, unpacked: w[k] the codes of register k, s[j] the
// int16 scales of packed register j, m the int16 mins (Q2_K: 16; Q4_K / Q5_K: 8 in the
// low 128 bits), dd = [d, dmin, ...].
typedef struct {
    __m512i w[4];
    __m512i s[2];
    __m256i m;
    __m128 dd;
} wsb;

// One super-block of one activation row: a[k] the activations matching w[k]; bias[k]
// (Q3_K / Q6_K) minus the code offset times the sums of 4 activations of each lane;
// bs the bsums (Q4_K / Q5_K: the 8 sums of 32 as int16 in the low 128 bits); d broadcast.
typedef struct {
    __m512i a[4];
    __m512i bias[4];
    __m256i bs;
    __m128 d;
} asb;

INLINE int code_offset(const int type) {
    return type == ROOST_TYPE_Q3_K ? 4 : type == ROOST_TYPE_Q6_K ? 32 : 0;
}

INLINE void load_a(const int type, const block_q8_K *y, asb *o) {
    const int8_t *q = y->qs;
    switch (type) {
    case ROOST_TYPE_Q2_K:
    case ROOST_TYPE_Q3_K:
        for (int k = 0; k < 4; k++) o->a[k] = load_2x256(q + 32 * k, q + 128 + 32 * k);
        break;
    case ROOST_TYPE_Q4_K:
    case ROOST_TYPE_Q5_K:
        for (int k = 0; k < 4; k++) {
            const int8_t *p = q + 128 * (k >> 1) + 32 * (k & 1);
            o->a[k] = load_2x256(p, p + 64);
        }
        break;
    default:
        for (int k = 0; k < 4; k++) o->a[k] = load512(q + 64 * k);
        break;
    }
    const int off = code_offset(type);
    for (int k = 0; k < 4; k++)
        o->bias[k] = off ? _mm512_sub_epi32(_mm512_setzero_si512(),
                                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)off), o->a[k]))
                         : _mm512_setzero_si512();
    const __m256i bs = load256(y->bsums);
    if (is_q45(type)) {
        const __m256i s2 = _mm256_madd_epi16(bs, _mm256_set1_epi16(1)); // |sum| <= 32 * 128
        o->bs = _mm256_castsi128_si256(_mm_packs_epi32(_mm256_castsi256_si128(s2), _mm256_extracti128_si256(s2, 1)));
    } else {
        o->bs = bs;
    }
    o->d = _mm_set1_ps(y->d);
}

// Q4_K / Q5_K scales: 8 six-bit scales then 8 six-bit mins, as 16 bytes (ggml's
// get_scale_min_k4 packing). The 16-byte load reads 4 bytes past the 12 (still in the block).
INLINE __m128i scales_k4(const uint8_t *s) {
    const __m128i x = load128(s); // u0, u1, u2 (, junk)
    // [u0 & k1, u2 & k2, u1 & k1, (u2 >> 4) & k2] | [0, (u0 >> 2) & 0x30.., 0, (u1 >> 2) & 0x30..]
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(x, 0x98), _mm_setr_epi32(0, 0, 0, 4)),
                                     _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m128i hi = _mm_srli_epi32(_mm_shuffle_epi32(x, 0x50), 2);
    return _mm_ternarylogic_epi32(hi, _mm_setr_epi32(0, 0x30303030, 0, 0x30303030), lo, 0xea);
}

// Q3_K scales: 16 six-bit values (stored + 32), as 16 bytes. The 16-byte load starts 4
// bytes before the 12 (inside the block: the end of qs).
INLINE __m128i scales_q3(const uint8_t *s) {
    const __m128i x = load128(s - 4); // (junk,) a0, a1, t
    // low 4 bits: [a0, a1, a0 >> 4, a1 >> 4] & k2; high 2: ((t >> 2i) & 3) << 4 for lane i
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(x, 0x99), _mm_setr_epi32(0, 0, 4, 4)),
                                     _mm_set1_epi32(0x0f0f0f0f));
    const __m128i hi = _mm_rolv_epi32(_mm_shuffle_epi32(x, 0xff), _mm_setr_epi32(4, 2, 0, 30));
    return _mm_ternarylogic_epi32(hi, _mm_set1_epi32(0x30303030), lo, 0xea);
}

INLINE void load_w(const int type, const char *b, wsb *o) {
    const __m512i m03 = _mm512_set1_epi8(0x03), m0f = _mm512_set1_epi8(0x0f);
    __m256i sc; // 16 int16 scales (Q4_K / Q5_K: 8 scales, 8 mins)
    switch (type) {
    case ROOST_TYPE_Q2_K: {
        const block_q2_K *x = (const block_q2_K *)b;
        const __m512i q = load512(x->qs);
        o->w[0] = _mm512_and_si512(q, m03);
        o->w[1] = _mm512_and_si512(_mm512_srli_epi16(q, 2), m03);
        o->w[2] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m03);
        o->w[3] = _mm512_and_si512(_mm512_srli_epi16(q, 6), m03);
        const __m128i sm = load128(x->scales);
        sc = _mm256_cvtepu8_epi16(_mm_and_si128(sm, _mm_set1_epi8(0x0f)));
        o->m = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sm, 4), _mm_set1_epi8(0x0f)));
        o->dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)load_u32(&x->d))); // d, dmin
        break;
    }
    case ROOST_TYPE_Q3_K: {
        const block_q3_K *x = (const block_q3_K *)b;
        const __m512i q = load512(x->qs);
        const __m512i h = _mm512_broadcast_i64x4(load256(x->hmask));
        const __m512i m04 = _mm512_set1_epi8(0x04);
        // code bit 2 = hmask bit k (low half), bit 4 + k (high half)
        for (int k = 0; k < 4; k++)
            o->w[k] = and_or(_mm512_rolv_epi64(h, rot2(2 - k, -2 - k)), m04,
                             _mm512_and_si512(k ? _mm512_srli_epi16(q, 2 * k) : q, m03));
        sc = _mm256_sub_epi16(_mm256_cvtepu8_epi16(scales_q3(x->scales)), _mm256_set1_epi16(32));
        o->dd = _mm_cvtph_ps(_mm_cvtsi32_si128(x->d));
        break;
    }
    case ROOST_TYPE_Q4_K:
    case ROOST_TYPE_Q5_K: {
        const uint8_t *qs, *scales;
        if (type == ROOST_TYPE_Q4_K) {
            const block_q4_K *x = (const block_q4_K *)b;
            qs = x->qs, scales = x->scales;
        } else {
            const block_q5_K *x = (const block_q5_K *)b;
            qs = x->qs, scales = x->scales;
        }
        const __m512i q0 = load512(qs), q1 = load512(qs + 64);
        o->w[0] = _mm512_and_si512(q0, m0f);
        o->w[1] = _mm512_and_si512(_mm512_srli_epi16(q0, 4), m0f);
        o->w[2] = _mm512_and_si512(q1, m0f);
        o->w[3] = _mm512_and_si512(_mm512_srli_epi16(q1, 4), m0f);
        if (type == ROOST_TYPE_Q5_K) {
            // fifth bit of group g = bit g of qh, moved to bit 4
            const block_q5_K *x = (const block_q5_K *)b;
            const __m512i h = _mm512_broadcast_i64x4(load256(x->qh));
            const __m512i m10 = _mm512_set1_epi8(0x10);
            for (int k = 0; k < 4; k++) {
                const int g = group_of(type, k, 0);
                o->w[k] = and_or(_mm512_rolv_epi64(h, rot2(4 - g, 2 - g)), m10, o->w[k]);
            }
        }
        sc = _mm256_cvtepu8_epi16(scales_k4(scales));
        o->m = _mm256_castsi128_si256(_mm256_extracti128_si256(sc, 1));
        o->dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)load_u32(b))); // d, dmin at the block start
        break;
    }
    default: { // Q6_K
        const block_q6_K *x = (const block_q6_K *)b;
        const __m512i m30 = _mm512_set1_epi8(0x30);
        for (int half = 0; half < 2; half++) {
            const __m512i l = load512(x->ql + 64 * half);
            const __m512i h = _mm512_broadcast_i64x4(load256(x->qh + 32 * half));
            // low nibbles: qh bits 0-1 (first 32), 2-3 (next 32); high nibbles: bits 4-5, 6-7
            o->w[2 * half] = and_or(_mm512_rolv_epi64(h, rot2(4, 2)), m30, _mm512_and_si512(l, m0f));
            o->w[2 * half + 1] = and_or(_mm512_rolv_epi64(h, rot2(0, -2)), m30,
                                        _mm512_and_si512(_mm512_srli_epi16(l, 4), m0f));
        }
        sc = _mm256_cvtepi8_epi16(load128(x->scales));
        o->dd = _mm_cvtph_ps(_mm_cvtsi32_si128(x->d));
        break;
    }
    }
    const __m512i s = _mm512_castsi256_si512(sc);
    o->s[0] = _mm512_permutexvar_epi16(scale_idx(type, 0), s);
    o->s[1] = _mm512_permutexvar_epi16(scale_idx(type, 1), s);
}

// One super-block of one pair -> *is: 16 int32 lanes summing to the exact isum, *m4: 4
// lanes summing to the exact msum (0 without mins). vpdpbusd sums 4 code x activation
// products per int32 lane (Q3_K / Q6_K: from the bias, so the sums are of q x activation;
// |sum| <= 4 * 63 * 128 < 2^15), the 4 lanes of each 128-bit lane in one scale group; two
// such registers are packed to int16 (exact), then pmaddwd / vpdpwssd with the scales.
INLINE void pair_sums(const int type, const wsb *w, const asb *a, __m512i *is, __m128i *m4) {
    __m512i p[4];
    for (int k = 0; k < 4; k++)
        p[k] = _mm512_dpbusd_epi32(code_offset(type) ? a->bias[k] : _mm512_setzero_si512(), w->w[k], a->a[k]);
    const __m512i p01 = _mm512_packs_epi32(p[0], p[1]), p23 = _mm512_packs_epi32(p[2], p[3]);
    *is = _mm512_dpwssd_epi32(_mm512_madd_epi16(p01, w->s[0]), p23, w->s[1]);
    if (type == ROOST_TYPE_Q2_K) {
        const __m256i m8 = _mm256_madd_epi16(w->m, a->bs);
        *m4 = _mm_add_epi32(_mm256_castsi256_si128(m8), _mm256_extracti128_si256(m8, 1));
    } else if (is_q45(type)) {
        *m4 = _mm_madd_epi16(_mm256_castsi256_si128(w->m), _mm256_castsi256_si128(a->bs));
    } else {
        *m4 = _mm_setzero_si128();
    }
}

// R weight rows w[r], C activation rows a[c] (Q8_K) -> out[r * C + c], bitwise the ref's
// value: per super-block the exact isum (and msum) of each pair, then the ref's float
// combine, every operation rounded separately:
//   acc = acc + ((d * a.d) * (float)isum [- (dmin * a.d) * (float)msum])
// Pairs go two at a time through one SSE vector: hadd reduces their sums to
// [isum0, isum1, msum0, msum1], multiplied by [d0 a.d, d1 a.d, dmin0 a.d, dmin1 a.d]; lanes
// 0, 1 then take the difference and the add. A pair's lane values do not depend on the
// other lanes, so every tile shape gives the ref's bits. C is 1 (pairs = rows r, r + 1)
// or 2 (pairs = the two columns of row r); R * C is even or 1 (padded with a zero pair).
//
// pf: the start of the rows the next tile reads (or NULL); prefetched while this tile
// computes, R * block bytes per super-block, in address order.
// prep: NULL, or (C = 1) the activation row already unpacked by load_a, one asb per
// super-block.
INLINE void kq_tile(const int type, const int R, const int C, int64_t nb, const char *const *w,
                    const char *const *a, const asb *prep, float *out, const char *pf) {
    const size_t ws = wsize(type);
    const int P = R * C, G = (P + 1) / 2; // pairs, groups of 2 pairs
    __m128 acc[4];
    UNROLL
    for (int g = 0; g < G; g++) acc[g] = _mm_setzero_ps();
    for (int64_t ib = 0; ib < nb; ib++) {
        if (pf) {
            const char *p = pf + (size_t)ib * (size_t)R * ws;
            for (size_t off = 0; off < (size_t)R * ws; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
        }
        asb av[2];
        const asb *ac[2];
        if (prep) {
            ac[0] = &prep[ib];
        } else {
            UNROLL
            for (int c = 0; c < C; c++) {
                load_a(type, (const block_q8_K *)a[c] + ib, &av[c]);
                ac[c] = &av[c];
            }
        }
        // activation d of the two pairs of a group, in lanes [p0, p1, p0, p1]
        const __m128 ad = C == 1 ? ac[0]->d : _mm_unpacklo_ps(ac[0]->d, ac[C - 1]->d);
        __m512i is[8];
        __m128i m4[8];
        __m128 dd[4];
        UNROLL
        for (int r = 0; r < R; r++) {
            wsb wv;
            load_w(type, w[r] + (size_t)ib * ws, &wv);
            dd[r] = wv.dd;
            UNROLL
            for (int c = 0; c < C; c++) pair_sums(type, &wv, ac[c], &is[r * C + c], &m4[r * C + c]);
        }
        UNROLL
        for (int g = 0; g < G; g++) {
            const int p0 = 2 * g, p1 = 2 * g + 1;
            const __m512i ia = is[p0], ib = p1 < P ? is[p1] : _mm512_setzero_si512();
            const __m128i ma = m4[p0], mb = p1 < P ? m4[p1] : _mm_setzero_si128();
            // 16 lanes of each pair -> 4: [a0 + a2, a1 + a3, b0 + b2, b1 + b3] (128-bit
            // lanes), then + the neighbour lane -> a in lane 0, b in lane 2
            __m512i x = _mm512_add_epi32(_mm512_shuffle_i64x2(ia, ib, 0x44), _mm512_shuffle_i64x2(ia, ib, 0xee));
            x = _mm512_add_epi32(x, _mm512_shuffle_i64x2(x, x, 0xb1));
            const __m128i ia4 = _mm512_castsi512_si128(x), ib4 = _mm512_extracti32x4_epi32(x, 2);
            // [d, d, dmin, dmin] of the two pairs' rows, lane order [p0, p1, p0, p1]
            __m128 dw;
            if (C == 2) dw = _mm_unpacklo_ps(dd[g], dd[g]);
            else dw = _mm_unpacklo_ps(dd[p0], p1 < P ? dd[p1] : _mm_setzero_ps());
            const __m128i s = _mm_hadd_epi32(_mm_hadd_epi32(ia4, ib4), _mm_hadd_epi32(ma, mb)); // i0 i1 m0 m1
            const __m128 t = _mm_mul_ps(_mm_mul_ps(dw, ad), _mm_cvtepi32_ps(s)); // t0 t1 u0 u1
            if (has_min(type)) acc[g] = _mm_add_ps(acc[g], _mm_sub_ps(t, _mm_movehl_ps(t, t)));
            else acc[g] = _mm_add_ps(acc[g], t);
        }
    }
    UNROLL
    for (int g = 0; g < G; g++) {
        float o[4];
        _mm_storeu_ps(o, acc[g]);
        out[2 * g] = o[0];
        if (2 * g + 1 < P) out[2 * g + 1] = o[1];
    }
}

// Rows per gemv tile: more rows share the weight-independent work (the compute-bound
// small types), fewer rows mean fewer concurrent DRAM streams. Measured on Zen 4 (1 and 2
// threads, 4096 x 4096 from DRAM): Q2_K / Q3_K 4 rows a few percent faster than 2; Q4_K /
// Q5_K 2 rows (with the next-tile prefetch) best, 4 rows 5-15% slower; Q6_K 1 row (one
// sequential stream, no software prefetch) and 2 rows within noise, 4 rows 25% slower.
INLINE int gemv_rows(const int type) {
    return type == ROOST_TYPE_Q2_K || type == ROOST_TYPE_Q3_K ? 4 : type == ROOST_TYPE_Q6_K ? 1 : 2;
}

#define KQ_PREP_MAX 64 // super-blocks: rows of up to 16384 elements (36 KB of stack)

INLINE void kq_gemv(const int type, int64_t n, int64_t nrows, const void *w, size_t row_bytes,
                    const void *a, float *y) {
    const int R = gemv_rows(type);
    const int64_t nb = n / QK_K;
    const char *wb = w;
    const char *ap[1] = {a};
    // The activation row unpacked once per call (on the stack, for rows up to
    // KQ_PREP_MAX super-blocks) instead of once per tile and super-block.
    asb prep_buf[KQ_PREP_MAX];
    const asb *prep = NULL;
    if (nrows > R && nb <= KQ_PREP_MAX) {
        for (int64_t ib = 0; ib < nb; ib++) load_a(type, (const block_q8_K *)a + ib, &prep_buf[ib]);
        prep = prep_buf;
    }
    int64_t r = 0;
    for (; r + R <= nrows; r += R) {
        const char *wp[4];
        for (int i = 0; i < R; i++) wp[i] = wb + (size_t)(r + i) * row_bytes;
        // (one row: the next tile is the next row, already streamed by the hardware)
        kq_tile(type, R, 1, nb, wp, ap, prep, y + r, R > 1 && r + 2 * R <= nrows ? wp[0] + R * row_bytes : NULL);
    }
    for (; r < nrows; r++) {
        const char *wp[1] = {wb + (size_t)r * row_bytes};
        kq_tile(type, 1, 1, nb, wp, ap, prep, y + r, NULL);
    }
}

// ---- gemm with repacked 16-row tiles -------------------------------------------------
// For KQ_SMALL_COLS (8) or more columns the weights of 16 rows are repacked once per K
// range (RK_KB super-blocks) and reused for every column: register k (k = 0..63) of a super-block
// holds in int32 lane r the 4 unsigned codes of elements 4k..4k+3 of row r (Q2_K: q times
// its group scale, <= 45; Q3_K: q + 4; Q4_K / Q5_K: q; Q6_K: q + 32), gathered and decoded
// with the same bit operations as the per-row code. A column's 4 activation bytes of the
// same elements are broadcast, so vpdpbusd leaves in lane r exact sums of (row r, column)
// without any horizontal reduction:
//   - per scale group (8 of 32 or 16 of 16 elements) the group sum p, then
//     isum += p * scale (vpmulld with the rows' int32 scales); Q2_K: one running sum;
//   - msum (Q2_K / Q4_K / Q5_K: mins x bsums) or the offset correction (Q3_K / Q6_K:
//     scales x bsums, isum -= offset * it) by vpdpwssd of the rows' int16 pairs with the
//     broadcast pairs of Q8_K bsums;
// then the ref's float combine in 16 float lanes (one per row), every operation rounded
// separately, super-block after super-block. Across K ranges the accumulators of a column
// are kept in y (a float store / reload is exact), so the order is the ref's and the
// results are bitwise the ref's (and the other tiles').
#define UNROLL16 _Pragma("GCC unroll 16")
#ifndef RK_KB
#define RK_KB 4 // super-blocks per K range
#endif
#ifndef RK_CC
#define RK_CC 128 // columns per chunk
#endif
#ifndef RK_C
#define RK_C 4 // columns per compute tile
#endif

typedef struct {
    __m512i q[RK_KB][64]; // codes
    __m512i s[RK_KB][16]; // int32 group scales (8 for Q4_K / Q5_K, 16 for Q3_K / Q6_K)
    __m512i m[RK_KB][8];  // int16 pairs matching the bsums pairs (mins, or Q3_K / Q6_K scales)
    __m512 d[RK_KB], dm[RK_KB];
} rk_tile;

static _Thread_local rk_tile rk_tile_buf;

INLINE int rk_groups(const int type) { return is_q45(type) ? 8 : 16; }

INLINE __m512i bytes_and(__m512i v, int m) { return _mm512_and_si512(v, _mm512_set1_epi32(m)); }

// Repack 16 rows (row r at w + r * rb), super-blocks kb0 .. kb0 + nkb - 1.
INLINE void rk_repack(const int type, const char *w, size_t rb, int64_t kb0, int nkb, rk_tile *T) {
    const size_t ws = wsize(type);
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32((int)rb));
#define G(off) _mm512_i32gather_epi32(idx, (const void *)(b + (off)), 1)
    for (int kb = 0; kb < nkb; kb++) {
        const char *b = w + (size_t)(kb0 + kb) * ws;
        __m512i *q = T->q[kb], *s = T->s[kb], *m = T->m[kb];
        __m512i dd;
        switch (type) {
        case ROOST_TYPE_Q2_K: {
            __m512i sc[16];
            UNROLL16
            for (int i = 0; i < 4; i++) {
                const __m512i S = G(4 * i);
                UNROLL16
                for (int j = 0; j < 4; j++) {
                    sc[4 * i + j] = bytes_and(_mm512_srli_epi32(S, 8 * j), 0x0f);
                    s[4 * i + j] = bytes_and(_mm512_srli_epi32(S, 8 * j + 4), 0x0f); // mins (temp)
                }
            }
            UNROLL16
            for (int i = 0; i < 8; i++) m[i] = _mm512_or_si512(s[2 * i], _mm512_slli_epi32(s[2 * i + 1], 16));
            UNROLL16
            for (int h = 0; h < 2; h++)
                UNROLL16
                for (int t = 0; t < 8; t++) {
                    const __m512i raw = G(16 + 32 * h + 4 * t);
                    UNROLL16
                    for (int k = 0; k < 4; k++)
                        q[32 * h + 8 * k + t] = _mm512_mullo_epi32(
                            bytes_and(k ? _mm512_srli_epi32(raw, 2 * k) : raw, 0x03030303), sc[8 * h + 2 * k + (t >> 2)]);
                }
            dd = G(80);
            break;
        }
        case ROOST_TYPE_Q3_K: {
            const __m512i A0 = G(96), A1 = G(100), Tt = G(104);
            UNROLL16
            for (int j = 0; j < 16; j++) {
                const __m512i A = (j & 4) ? A1 : A0;
                const __m512i lo = bytes_and(_mm512_srli_epi32(A, 8 * (j & 3) + 4 * (j >> 3)), 0x0f);
                const __m512i hi = bytes_and(_mm512_srli_epi32(Tt, 8 * (j & 3) + 2 * (j >> 2)), 3);
                s[j] = _mm512_sub_epi32(_mm512_or_si512(lo, _mm512_slli_epi32(hi, 4)), _mm512_set1_epi32(32));
            }
            UNROLL16
            for (int i = 0; i < 8; i++)
                m[i] = _mm512_or_si512(bytes_and(s[2 * i], 0xffff), _mm512_slli_epi32(s[2 * i + 1], 16));
            __m512i hm[8];
            UNROLL16
            for (int t = 0; t < 8; t++) hm[t] = G(4 * t);
            UNROLL16
            for (int h = 0; h < 2; h++)
                UNROLL16
                for (int t = 0; t < 8; t++) {
                    const __m512i raw = G(32 + 32 * h + 4 * t);
                    UNROLL16
                    for (int k = 0; k < 4; k++) {
                        const int hs = 4 * h + k;
                        const __m512i lo = bytes_and(k ? _mm512_srli_epi32(raw, 2 * k) : raw, 0x03030303);
                        const __m512i hb = bytes_and(hs ? _mm512_srli_epi32(hm[t], hs) : hm[t], 0x01010101);
                        q[32 * h + 8 * k + t] = _mm512_or_si512(lo, _mm512_slli_epi32(hb, 2));
                    }
                }
            dd = _mm512_srli_epi32(G(106), 16);
            break;
        }
        case ROOST_TYPE_Q4_K:
        case ROOST_TYPE_Q5_K: {
            const __m512i u0 = G(4), u1 = G(8), u2 = G(12);
            UNROLL16
            for (int j = 0; j < 8; j++) {
                __m512i sc, mn;
                if (j < 4) {
                    sc = bytes_and(_mm512_srli_epi32(u0, 8 * j), 63);
                    mn = bytes_and(_mm512_srli_epi32(u1, 8 * j), 63);
                } else {
                    const int jj = 8 * (j - 4);
                    sc = _mm512_or_si512(bytes_and(_mm512_srli_epi32(u2, jj), 15),
                                         _mm512_slli_epi32(bytes_and(_mm512_srli_epi32(u0, jj + 6), 3), 4));
                    mn = _mm512_or_si512(bytes_and(_mm512_srli_epi32(u2, jj + 4), 15),
                                         _mm512_slli_epi32(bytes_and(_mm512_srli_epi32(u1, jj + 6), 3), 4));
                }
                s[j] = sc;
                m[j] = _mm512_or_si512(mn, _mm512_slli_epi32(mn, 16));
            }
            const int qoff = type == ROOST_TYPE_Q4_K ? 16 : 48;
            __m512i hq[8];
            if (type == ROOST_TYPE_Q5_K) {
                UNROLL16
                for (int t = 0; t < 8; t++) hq[t] = G(16 + 4 * t);
            }
            UNROLL16
            for (int j = 0; j < 4; j++)
                UNROLL16
                for (int t = 0; t < 8; t++) {
                    const __m512i raw = G(qoff + 32 * j + 4 * t);
                    __m512i lo = bytes_and(raw, 0x0f0f0f0f), hi = bytes_and(_mm512_srli_epi32(raw, 4), 0x0f0f0f0f);
                    if (type == ROOST_TYPE_Q5_K) {
                        const int g = 2 * j;
                        lo = _mm512_or_si512(lo, _mm512_slli_epi32(bytes_and(g ? _mm512_srli_epi32(hq[t], g) : hq[t], 0x01010101), 4));
                        hi = _mm512_or_si512(hi, _mm512_slli_epi32(bytes_and(_mm512_srli_epi32(hq[t], g + 1), 0x01010101), 4));
                    }
                    q[16 * j + t] = lo;
                    q[16 * j + 8 + t] = hi;
                }
            dd = G(0);
            break;
        }
        default: { // Q6_K
            UNROLL16
            for (int i = 0; i < 4; i++) {
                const __m512i S = G(192 + 4 * i);
                UNROLL16
                for (int j = 0; j < 4; j++) s[4 * i + j] = _mm512_srai_epi32(_mm512_slli_epi32(S, 24 - 8 * j), 24);
            }
            UNROLL16
            for (int i = 0; i < 8; i++)
                m[i] = _mm512_or_si512(bytes_and(s[2 * i], 0xffff), _mm512_slli_epi32(s[2 * i + 1], 16));
            UNROLL16
            for (int h = 0; h < 2; h++)
                UNROLL16
                for (int t = 0; t < 8; t++) {
                    const __m512i L0 = G(64 * h + 4 * t), L1 = G(64 * h + 32 + 4 * t), H = G(128 + 32 * h + 4 * t);
                    const int k = 32 * h + t;
                    q[k] = _mm512_or_si512(bytes_and(L0, 0x0f0f0f0f), bytes_and(_mm512_slli_epi32(H, 4), 0x30303030));
                    q[k + 8] = _mm512_or_si512(bytes_and(L1, 0x0f0f0f0f), bytes_and(_mm512_slli_epi32(H, 2), 0x30303030));
                    q[k + 16] = _mm512_or_si512(bytes_and(_mm512_srli_epi32(L0, 4), 0x0f0f0f0f), bytes_and(H, 0x30303030));
                    q[k + 24] = _mm512_or_si512(bytes_and(_mm512_srli_epi32(L1, 4), 0x0f0f0f0f),
                                                bytes_and(_mm512_srli_epi32(H, 2), 0x30303030));
                }
            dd = _mm512_srli_epi32(G(206), 16);
            break;
        }
        }
        T->d[kb] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd));
        if (has_min(type)) T->dm[kb] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)));
    }
#undef G
}

// C columns (activation rows ap[c], pointing at super-block kb0) x the 16 rows of T,
// super-blocks 0 .. nkb - 1 of the range; accumulators in y[c * y_stride + 0..15].
INLINE void rk_cols(const int type, const int C, int first, int nkb, const rk_tile *T, const char *a,
                    size_t a_stride, float *y, int64_t y_stride) {
    const int NG = rk_groups(type), D = 64 / NG;
    const block_q8_K *ap[8];
    __m512 acc[8];
    UNROLL16
    for (int c = 0; c < C; c++) {
        ap[c] = (const block_q8_K *)(a + (size_t)c * a_stride);
        acc[c] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(y + c * y_stride);
    }
    for (int kb = 0; kb < nkb; kb++) {
        __m512i is[8], ms[8];
        UNROLL16
        for (int c = 0; c < C; c++) is[c] = _mm512_setzero_si512();
        if (type == ROOST_TYPE_Q2_K) {
            UNROLL16
            for (int k = 0; k < 64; k++) {
                const __m512i wk = _mm512_load_si512(&T->q[kb][k]);
                UNROLL16
                for (int c = 0; c < C; c++)
                    is[c] = _mm512_dpbusd_epi32(is[c], wk, _mm512_set1_epi32((int)load_u32(ap[c][kb].qs + 4 * k)));
            }
        } else {
            UNROLL16
            for (int g = 0; g < NG; g++) {
                __m512i p[8];
                UNROLL16
                for (int c = 0; c < C; c++) p[c] = _mm512_setzero_si512();
                UNROLL16
                for (int k = D * g; k < D * g + D; k++) {
                    const __m512i wk = _mm512_load_si512(&T->q[kb][k]);
                    UNROLL16
                    for (int c = 0; c < C; c++)
                        p[c] = _mm512_dpbusd_epi32(p[c], wk, _mm512_set1_epi32((int)load_u32(ap[c][kb].qs + 4 * k)));
                }
                const __m512i sg = _mm512_load_si512(&T->s[kb][g]);
                UNROLL16
                for (int c = 0; c < C; c++) is[c] = _mm512_add_epi32(is[c], _mm512_mullo_epi32(p[c], sg));
            }
        }
        UNROLL16
        for (int c = 0; c < C; c++) ms[c] = _mm512_setzero_si512();
        UNROLL16
        for (int i = 0; i < 8; i++) {
            const __m512i mi = _mm512_load_si512(&T->m[kb][i]);
            UNROLL16
            for (int c = 0; c < C; c++)
                ms[c] = _mm512_dpwssd_epi32(ms[c], mi, _mm512_set1_epi32((int)load_u32(&ap[c][kb].bsums[2 * i])));
        }
        const __m512 dw = T->d[kb];
        UNROLL16
        for (int c = 0; c < C; c++) {
            const __m512 ad = _mm512_set1_ps(ap[c][kb].d);
            if (has_min(type)) {
                const __m512 t = _mm512_mul_ps(_mm512_mul_ps(dw, ad), _mm512_cvtepi32_ps(is[c]));
                const __m512 u = _mm512_mul_ps(_mm512_mul_ps(T->dm[kb], ad), _mm512_cvtepi32_ps(ms[c]));
                acc[c] = _mm512_add_ps(acc[c], _mm512_sub_ps(t, u));
            } else {
                const __m512i isum = _mm512_sub_epi32(is[c], _mm512_slli_epi32(ms[c], type == ROOST_TYPE_Q3_K ? 2 : 5));
                acc[c] = _mm512_add_ps(acc[c], _mm512_mul_ps(_mm512_mul_ps(dw, ad), _mm512_cvtepi32_ps(isum)));
            }
        }
    }
    UNROLL16
    for (int c = 0; c < C; c++) _mm512_storeu_ps(y + c * y_stride, acc[c]);
}

// nrows16 (a multiple of 16) rows x ncols columns by repacked tiles.
INLINE void kq_gemm_repacked(const int type, int64_t nb, int64_t nrows16, const char *w, size_t row_bytes,
                             int64_t ncols, const char *a, size_t a_stride, float *y, int64_t y_stride) {
    rk_tile *T = &rk_tile_buf;
    for (int64_t c0 = 0; c0 < ncols; c0 += RK_CC) {
        const int64_t cc = ncols - c0 < RK_CC ? ncols - c0 : RK_CC;
        const char *ac = a + (size_t)c0 * a_stride;
        for (int64_t kb0 = 0; kb0 < nb; kb0 += RK_KB) {
            const int nkb = (int)(nb - kb0 < RK_KB ? nb - kb0 : RK_KB);
            const char *ak = ac + (size_t)kb0 * sizeof(block_q8_K);
            for (int64_t r = 0; r < nrows16; r += 16) {
                rk_repack(type, w + (size_t)r * row_bytes, row_bytes, kb0, nkb, T);
                float *yt = y + c0 * y_stride + r;
                int64_t c = 0;
                for (; c + RK_C <= cc; c += RK_C)
                    rk_cols(type, RK_C, kb0 == 0, nkb, T, ak + (size_t)c * a_stride, a_stride, yt + c * y_stride, y_stride);
                if (RK_C > 4 && c + 4 <= cc) {
                    rk_cols(type, 4, kb0 == 0, nkb, T, ak + (size_t)c * a_stride, a_stride, yt + c * y_stride, y_stride);
                    c += 4;
                }
                for (; c < cc; c++)
                    rk_cols(type, 1, kb0 == 0, nkb, T, ak + (size_t)c * a_stride, a_stride, yt + c * y_stride, y_stride);
            }
        }
    }
}

// Tiles of 4 rows x 2 columns (an odd last column: 4 x 1), then 1 row x 2 (or 1)
// columns. Rows outside, columns inside: a tile's rows are read from memory once (the
// first column pair prefetches the next tile) and stay in L1 for the other pairs. A
// pair's sums do not depend on the tile shape, so the results are the gemv's bits.
INLINE void kq_gemm_small(const int type, int64_t n, int64_t nrows, const void *w, size_t row_bytes,
                    int64_t ncols, const void *a, size_t a_stride, float *y, int64_t y_stride) {
    const int64_t nb = n / QK_K;
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
            kq_tile(type, 4, 2, nb, wp, ap, NULL, out, c == 0 ? pf : NULL);
            for (int i = 0; i < 4; i++) {
                y[c * y_stride + r + i] = out[i * 2];
                y[(c + 1) * y_stride + r + i] = out[i * 2 + 1];
            }
        }
        if (c < ncols) {
            const char *ap[1] = {ab + (size_t)c * a_stride};
            kq_tile(type, 4, 1, nb, wp, ap, NULL, out, c == 0 ? pf : NULL);
            for (int i = 0; i < 4; i++) y[c * y_stride + r + i] = out[i];
        }
    }
    for (; r < nrows; r++) {
        const char *wp[1] = {wb + (size_t)r * row_bytes};
        int64_t c = 0;
        for (; c + 2 <= ncols; c += 2) {
            const char *ap[2] = {ab + (size_t)c * a_stride, ab + (size_t)(c + 1) * a_stride};
            kq_tile(type, 1, 2, nb, wp, ap, NULL, out, NULL);
            y[c * y_stride + r] = out[0];
            y[(c + 1) * y_stride + r] = out[1];
        }
        if (c < ncols) {
            const char *ap[1] = {ab + (size_t)c * a_stride};
            kq_tile(type, 1, 1, nb, wp, ap, NULL, out, NULL);
            y[c * y_stride + r] = out[0];
        }
    }
}

// Columns below which the small tiles beat the repacked ones (repacking 16 rows costs
// about as much as several columns of products; decode steps of a few sequences).
#ifndef KQ_SMALL_COLS
#define KQ_SMALL_COLS 8
#endif

// Repacked 16-row tiles for KQ_SMALL_COLS (8) or more columns; the rows past a multiple
// of 16 (and fewer columns) by the small tiles.
INLINE void kq_gemm(const int type, int64_t n, int64_t nrows, const void *w, size_t row_bytes,
                    int64_t ncols, const void *a, size_t a_stride, float *y, int64_t y_stride) {
    const int64_t nrows16 = nrows & ~(int64_t)15;
#ifndef KQ_SMALL_AVX512
    // Few columns: the AVX2 1-row tiles (same bits), faster on Zen 4 where 512-bit
    // instructions run at half rate (Q4_K 3072 x 768, 1 thread: 2 columns 0.85 vs 1.25,
    // 4 columns 0.83 vs 1.21 ms per column).
    if (ncols < KQ_SMALL_COLS) {
        roost_kq_gemm_small_avx2(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);
        return;
    }
#endif
    if (ncols < KQ_SMALL_COLS || nrows16 == 0 || row_bytes > (size_t)(INT32_MAX / 16)) {
        kq_gemm_small(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);
        return;
    }
    kq_gemm_repacked(type, n / QK_K, nrows16, w, row_bytes, ncols, a, a_stride, y, y_stride);
    if (nrows16 < nrows)
        kq_gemm_small(type, n, nrows - nrows16, (const char *)w + (size_t)nrows16 * row_bytes, row_bytes, ncols, a,
                      a_stride, y + nrows16, y_stride);
}

#define KQ_KERNELS(name, type)                                                                   \
    TARGET static void gemv_##name##_avx512(int64_t n, int64_t nrows, const void *w,             \
                                            size_t row_bytes, const void *a, float *y) {         \
        kq_gemv(type, n, nrows, w, row_bytes, a, y);                                             \
    }                                                                                            \
    TARGET static void gemm_##name##_avx512(int64_t n, int64_t nrows, const void *w,             \
                                            size_t row_bytes, int64_t ncols, const void *a,      \
                                            size_t a_stride, float *y, int64_t y_stride) {       \
        kq_gemm(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);                  \
    }

KQ_KERNELS(q2_k, ROOST_TYPE_Q2_K)
KQ_KERNELS(q3_k, ROOST_TYPE_Q3_K)
KQ_KERNELS(q4_k, ROOST_TYPE_Q4_K)
KQ_KERNELS(q5_k, ROOST_TYPE_Q5_K)
KQ_KERNELS(q6_k, ROOST_TYPE_Q6_K)

void roost_register_avx512_kquants(roost_kernels *k) {
    k->gemv[ROOST_TYPE_Q2_K] = gemv_q2_k_avx512;
    k->gemv[ROOST_TYPE_Q3_K] = gemv_q3_k_avx512;
    k->gemv[ROOST_TYPE_Q4_K] = gemv_q4_k_avx512;
    k->gemv[ROOST_TYPE_Q5_K] = gemv_q5_k_avx512;
    k->gemv[ROOST_TYPE_Q6_K] = gemv_q6_k_avx512;

    k->gemm[ROOST_TYPE_Q2_K] = gemm_q2_k_avx512;
    k->gemm[ROOST_TYPE_Q3_K] = gemm_q3_k_avx512;
    k->gemm[ROOST_TYPE_Q4_K] = gemm_q4_k_avx512;
    k->gemm[ROOST_TYPE_Q5_K] = gemm_q5_k_avx512;
    k->gemm[ROOST_TYPE_Q6_K] = gemm_q6_k_avx512;
}

#else

void roost_register_avx512_kquants(roost_kernels *k) { (void)k; }

#endif
