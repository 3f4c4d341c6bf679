// AVX2 + FMA + F16C kernels for the K-quants: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K weights with
// Q8_K activations (gemv, gemm), Q8_K quantize, and dequantize of every K-quant format.
//
// Dot products: bitwise equal to the ref. Per super-block and (weight row, activation
// row) pair, the integer sums are exact: the weight quants are unpacked to unsigned bytes
// (Q3_K and Q6_K with an offset of 4 / 32, taken out again through the activation's
// bsums), multiplied with the signed Q8_K bytes by maddubs and weighted by the group
// scales with madd into eight int32 lanes; the min terms (Q2_K, Q4_K, Q5_K) are eight
// more int32 lanes from madd of the mins with bsums. The lanes are summed exactly (one
// horizontal integer sum per super-block, none per sub-block), and the float combine is
// the ref's, operation for operation: (d * a.d) * (float)isum [- (dmin * a.d) *
// (float)msum] added into the pair's float accumulator, super-block after super-block
// (scalar SSE operations, no FMA). So a result does not depend on the path, the tile
// shape (1 row x 1 column in gemv; 1 row x 4 columns, then 1 x 2, in gemm, reusing the
// unpacked weights across the columns; for 4 or more columns repacked 8-row tiles, see
// "gemm with repacked 8-row tiles"), nor the row split.
// gemv streams one weight row at a time: interleaving 4 rows (4 concurrent streams 1-2 KB
// apart) measured 2-2.5x slower from DRAM on this Zen 3 VM.
//
// Dequantize and quantize are bitwise equal to the ref ones: the same float32 operations
// (products and differences, no FMA) on the same values.
#include "internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))
#define UNROLL _Pragma("GCC unroll 16")

// The ref's float combine requires that no multiply-add is fused.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define KQ_MAXC 4 // activation columns per gemm tile

INLINE float h2f(roost_half h) { return _cvtsh_ss(h); }

INLINE uint32_t load_u32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE __m256i loadu256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
INLINE __m128i loadu128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

// ---- scale unpacking ----------------------------------------------------------------

// Q4_K / Q5_K (get_scale_min_k4): the 12 scale bytes -> scales 0..7 then mins 0..7, in
// both 128-bit lanes. s must be readable for 16 bytes (the quants follow the scales).
// With u0, u1, u2 the three 32-bit words:
//   sc 0..3 = u0 & 0x3f..        sc 4..7 = (u2 & 0x0f..) | ((u0 >> 2) & 0x30..)
//   m 0..3  = u1 & 0x3f..        m 4..7  = ((u2 >> 4) & 0x0f..) | ((u1 >> 2) & 0x30..)
INLINE __m256i scales_mins_k4(const uint8_t *s) {
    const __m256i v = _mm256_broadcastsi128_si256(loadu128(s));
    const __m256i p = _mm256_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)); // u0 u2 u1 u2
    const __m256i q = _mm256_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)); // u0 u0 u1 u1
    const __m256i lo = _mm256_and_si256(_mm256_srlv_epi32(p, _mm256_setr_epi32(0, 0, 0, 4, 0, 0, 0, 4)),
                                        _mm256_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f,
                                                          0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(q, 2),
                                        _mm256_setr_epi32(0, 0x30303030, 0, 0x30303030, 0, 0x30303030, 0, 0x30303030));
    return _mm256_or_si256(lo, hi);
}

// Q3_K: the 12 scale bytes -> 16 signed bytes, the scales minus 32. Reads s[-4..11]
// (the quants precede the scales). With u0, u1, u2 the three 32-bit words:
//   scales 0..3   = (u0 & 0x0f..)        | ((u2 << 4) & 0x30..)
//   scales 4..7   = (u1 & 0x0f..)        | ((u2 << 2) & 0x30..)
//   scales 8..11  = ((u0 >> 4) & 0x0f..) | (u2 & 0x30..)
//   scales 12..15 = ((u1 >> 4) & 0x0f..) | ((u2 >> 2) & 0x30..)
INLINE __m128i scales_q3_k(const uint8_t *s) {
    const __m128i v = _mm_srli_si128(loadu128(s - 4), 4);
    const __m128i w = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 1, 0));
    const __m128i u2 = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 2, 2, 2));
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(w, _mm_setr_epi32(0, 0, 4, 4)), _mm_set1_epi8(0x0f));
    const __m128i hi = _mm_and_si128(_mm_srlv_epi32(_mm_sllv_epi32(u2, _mm_setr_epi32(4, 2, 0, 0)),
                                                    _mm_setr_epi32(0, 0, 0, 2)),
                                     _mm_set1_epi8(0x30));
    return _mm_sub_epi8(_mm_or_si128(lo, hi), _mm_set1_epi8(32));
}

// 16-group formats: the 16 scales as int16 s16 (low lane s0..7, high lane s8..15). For
// the 32 elements of chunk k (groups 2k, 2k+1), the madd factor is s_{2k} in the low
// 128-bit lane and s_{2k+1} in the high one (maddubs keeps the lanes: int16 0..7 are
// elements 0..15, 8..15 are 16..31).
typedef struct { __m256i lo, hi; } scales16;

INLINE scales16 scales16_make(__m256i s16) {
    scales16 s;
    s.lo = _mm256_permute2x128_si256(s16, s16, 0x00);
    s.hi = _mm256_permute2x128_si256(s16, s16, 0x11);
    return s;
}

INLINE __m256i scales16_get(const scales16 *s, const int k) {
    const int kk = k & 3;
    const short lo = (short)((4 * kk) | ((4 * kk + 1) << 8));
    const short hi = (short)((4 * kk + 2) | ((4 * kk + 3) << 8));
    const __m256i ctrl = _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo));
    return _mm256_shuffle_epi8(k < 4 ? s->lo : s->hi, ctrl);
}

// Q4_K / Q5_K: sm = scales_mins_k4 in both lanes. Scale g zero-extended to all 16 int16.
INLINE __m256i scale_k4(__m256i sm, const int g) {
    return _mm256_shuffle_epi8(sm, _mm256_set1_epi16((short)(0x8000 | g)));
}

// Mins as int16 matching the 16 bsums: m0 m0 m1 m1 .. m3 m3 | m4 m4 .. m7 m7.
INLINE __m256i mins_k4(__m256i sm) {
    const __m256i ctrl = _mm256_setr_epi16(
        (short)0x8008, (short)0x8008, (short)0x8009, (short)0x8009, (short)0x800a, (short)0x800a,
        (short)0x800b, (short)0x800b, (short)0x800c, (short)0x800c, (short)0x800d, (short)0x800d,
        (short)0x800e, (short)0x800e, (short)0x800f, (short)0x800f);
    return _mm256_shuffle_epi8(sm, ctrl);
}

// sum += scale * (q . a) over 32 bytes: maddubs (unsigned q, signed a) -> int16 pairs,
// madd with the int16 scales -> int32.
INLINE __m256i dot32(__m256i sum, __m256i q, const int8_t *a, __m256i scale) {
    return _mm256_add_epi32(sum, _mm256_madd_epi16(scale, _mm256_maddubs_epi16(q, loadu256(a))));
}

// Exact horizontal sum of 8 int32 lanes, in lane 0.
INLINE __m128i hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
}

// The ref's float combine, in lane 0 of acc (separately rounded float32 operations):
//   acc += (wd * ad) * (float)isum
INLINE __m128 combine(__m128 acc, __m256i isum, float wd, float ad) {
    const __m128 d = _mm_mul_ss(_mm_set_ss(wd), _mm_set_ss(ad));
    const __m128 fi = _mm_cvtepi32_ps(hsum_i32(isum));
    return _mm_add_ss(acc, _mm_mul_ss(d, fi));
}

// Weight d and dmin (adjacent fp16) as floats in lanes 0, 1.
INLINE __m128 load_d_dmin(const roost_half *dd) {
    uint32_t v;
    memcpy(&v, dd, sizeof v);
    return _mm_cvtph_ps(_mm_cvtsi32_si128((int)v));
}

//   acc += (wd * ad) * (float)isum - (wdmin * ad) * (float)msum,   wdm = load_d_dmin
INLINE __m128 combine_dmin(__m128 acc, __m256i isum, __m256i msum, __m128 wdm, float ad) {
    const __m128 dm = _mm_mul_ps(wdm, _mm_set1_ps(ad)); // wd * ad, wdmin * ad
    const __m128i a = _mm_add_epi32(_mm256_castsi256_si128(isum), _mm256_extracti128_si256(isum, 1));
    const __m128i b = _mm_add_epi32(_mm256_castsi256_si128(msum), _mm256_extracti128_si256(msum, 1));
    const __m128i c = _mm_hadd_epi32(a, b);
    const __m128 f = _mm_cvtepi32_ps(_mm_hadd_epi32(c, c)); // isum, msum
    const __m128 tu = _mm_mul_ps(dm, f);                   // t, u
    return _mm_add_ss(acc, _mm_sub_ss(tu, _mm_movehdup_ps(tu)));
}

// ---- one weight super-block against C activation super-blocks ------------------------
// acc[c] is the accumulator of this row with activation column c.

INLINE void row_q2_k(const int C, const block_q2_K *x, const block_q8_K *const *a, __m128 *acc) {
    const __m128i raw = loadu128(x->scales);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    const scales16 sc = scales16_make(_mm256_cvtepu8_epi16(_mm_and_si128(raw, m4)));
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i sumi[KQ_MAXC];
    UNROLL for (int c = 0; c < C; c++) sumi[c] = _mm256_setzero_si256();
    UNROLL for (int h = 0; h < 2; h++) {
        __m256i bits = loadu256(x->qs + 32 * h);
        UNROLL for (int t = 0; t < 4; t++) {
            const int k = 4 * h + t;
            const __m256i q = _mm256_and_si256(bits, m3);
            bits = _mm256_srli_epi16(bits, 2);
            const __m256i s = scales16_get(&sc, k);
            UNROLL for (int c = 0; c < C; c++) sumi[c] = dot32(sumi[c], q, a[c]->qs + 32 * k, s);
        }
    }
    const __m128 wdm = load_d_dmin(&x->d);
    UNROLL for (int c = 0; c < C; c++) {
        const __m256i msum = _mm256_madd_epi16(mins, loadu256(a[c]->bsums));
        acc[c] = combine_dmin(acc[c], sumi[c], msum, wdm, a[c]->d);
    }
}

// Q3_K quants of chunk k (elements 32 k .. 32 k + 31) plus 4, in [0, 7]: the 2 low bits
// (bits 2t, 2t + 1 of the 32 qs bytes of half h, k = 4 h + t), and 4 when bit k of
// hmask is set. 16-bit shifts: the bits kept never cross a byte.
INLINE __m256i q3_chunk(__m256i qs_h, __m256i hm, const int k) {
    const int t = k & 3;
    const __m256i lo = _mm256_and_si256(t ? _mm256_srli_epi16(qs_h, 2 * t) : qs_h, _mm256_set1_epi8(3));
    const __m256i hb = k < 2 ? _mm256_slli_epi16(hm, 2 - k) : k > 2 ? _mm256_srli_epi16(hm, k - 2) : hm;
    return _mm256_or_si256(lo, _mm256_and_si256(hb, _mm256_set1_epi8(4)));
}

// q + 4 against a, then 4 * sum_g s_g * bsums_g taken out.
INLINE void row_q3_k(const int C, const block_q3_K *x, const block_q8_K *const *a, __m128 *acc) {
    const __m256i s16 = _mm256_cvtepi8_epi16(scales_q3_k(x->scales));
    const scales16 sc = scales16_make(s16);
    const __m256i hm = loadu256(x->hmask);
    __m256i sumi[KQ_MAXC];
    UNROLL for (int c = 0; c < C; c++) sumi[c] = _mm256_setzero_si256();
    UNROLL for (int h = 0; h < 2; h++) {
        const __m256i bits = loadu256(x->qs + 32 * h);
        UNROLL for (int t = 0; t < 4; t++) {
            const int k = 4 * h + t;
            const __m256i q = q3_chunk(bits, hm, k);
            const __m256i s = scales16_get(&sc, k);
            UNROLL for (int c = 0; c < C; c++) sumi[c] = dot32(sumi[c], q, a[c]->qs + 32 * k, s);
        }
    }
    const float wd = h2f(x->d);
    UNROLL for (int c = 0; c < C; c++) {
        const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(s16, loadu256(a[c]->bsums)), 2);
        acc[c] = combine(acc[c], _mm256_sub_epi32(sumi[c], corr), wd, a[c]->d);
    }
}

INLINE void row_q4_k(const int C, const block_q4_K *x, const block_q8_K *const *a, __m128 *acc) {
    const __m256i sm = scales_mins_k4(x->scales);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i sumi[KQ_MAXC];
    UNROLL for (int c = 0; c < C; c++) sumi[c] = _mm256_setzero_si256();
    UNROLL for (int j = 0; j < 4; j++) {
        const __m256i bits = loadu256(x->qs + 32 * j);
        const __m256i lo = _mm256_and_si256(bits, m4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
        const __m256i sl = scale_k4(sm, 2 * j), sh = scale_k4(sm, 2 * j + 1);
        UNROLL for (int c = 0; c < C; c++) {
            sumi[c] = dot32(sumi[c], lo, a[c]->qs + 64 * j, sl);
            sumi[c] = dot32(sumi[c], hi, a[c]->qs + 64 * j + 32, sh);
        }
    }
    const __m256i mins = mins_k4(sm);
    const __m128 wdm = load_d_dmin(&x->d);
    UNROLL for (int c = 0; c < C; c++) {
        const __m256i msum = _mm256_madd_epi16(mins, loadu256(a[c]->bsums));
        acc[c] = combine_dmin(acc[c], sumi[c], msum, wdm, a[c]->d);
    }
}

INLINE void row_q5_k(const int C, const block_q5_K *x, const block_q8_K *const *a, __m128 *acc) {
    const __m256i sm = scales_mins_k4(x->scales);
    const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
    __m256i hb = loadu256(x->qh);
    __m256i sumi[KQ_MAXC];
    UNROLL for (int c = 0; c < C; c++) sumi[c] = _mm256_setzero_si256();
    UNROLL for (int j = 0; j < 4; j++) {
        // fifth bits: bit 2j (low nibbles) and 2j+1 (high nibbles) of qh, now at bits 0, 1
        const __m256i bits = loadu256(x->qs + 32 * j);
        const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4),
                                           _mm256_and_si256(_mm256_slli_epi16(hb, 4), b4));
        const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),
                                           _mm256_and_si256(_mm256_slli_epi16(hb, 3), b4));
        hb = _mm256_srli_epi16(hb, 2);
        const __m256i sl = scale_k4(sm, 2 * j), sh = scale_k4(sm, 2 * j + 1);
        UNROLL for (int c = 0; c < C; c++) {
            sumi[c] = dot32(sumi[c], lo, a[c]->qs + 64 * j, sl);
            sumi[c] = dot32(sumi[c], hi, a[c]->qs + 64 * j + 32, sh);
        }
    }
    const __m256i mins = mins_k4(sm);
    const __m128 wdm = load_d_dmin(&x->d);
    UNROLL for (int c = 0; c < C; c++) {
        const __m256i msum = _mm256_madd_epi16(mins, loadu256(a[c]->bsums));
        acc[c] = combine_dmin(acc[c], sumi[c], msum, wdm, a[c]->d);
    }
}

// q + 32 (in [0, 63]) against a, then 32 * sum_g s_g * bsums_g taken out.
INLINE void row_q6_k(const int C, const block_q6_K *x, const block_q8_K *const *a, __m128 *acc) {
    const __m256i s16 = _mm256_cvtepi8_epi16(loadu128(x->scales));
    const scales16 sc = scales16_make(s16);
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    __m256i sumi[KQ_MAXC];
    UNROLL for (int c = 0; c < C; c++) sumi[c] = _mm256_setzero_si256();
    UNROLL for (int h = 0; h < 2; h++) {
        const __m256i l0 = loadu256(x->ql + 64 * h);
        const __m256i l1 = loadu256(x->ql + 64 * h + 32);
        const __m256i qh = loadu256(x->qh + 32 * h);
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
        q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
        UNROLL for (int t = 0; t < 4; t++) {
            const int k = 4 * h + t;
            const __m256i s = scales16_get(&sc, k);
            UNROLL for (int c = 0; c < C; c++) sumi[c] = dot32(sumi[c], q[t], a[c]->qs + 32 * k, s);
        }
    }
    const float wd = h2f(x->d);
    UNROLL for (int c = 0; c < C; c++) {
        const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(s16, loadu256(a[c]->bsums)), 5);
        acc[c] = combine(acc[c], _mm256_sub_epi32(sumi[c], corr), wd, a[c]->d);
    }
}

INLINE size_t kq_block_size(const int type) {
    switch (type) {
    case ROOST_TYPE_Q2_K: return sizeof(block_q2_K);
    case ROOST_TYPE_Q3_K: return sizeof(block_q3_K);
    case ROOST_TYPE_Q4_K: return sizeof(block_q4_K);
    case ROOST_TYPE_Q5_K: return sizeof(block_q5_K);
    default: return sizeof(block_q6_K);
    }
}

INLINE void kq_row(const int type, const int C, const char *b, const block_q8_K *const *a, __m128 *acc) {
    switch (type) {
    case ROOST_TYPE_Q2_K: row_q2_k(C, (const block_q2_K *)b, a, acc); break;
    case ROOST_TYPE_Q3_K: row_q3_k(C, (const block_q3_K *)b, a, acc); break;
    case ROOST_TYPE_Q4_K: row_q4_k(C, (const block_q4_K *)b, a, acc); break;
    case ROOST_TYPE_Q5_K: row_q5_k(C, (const block_q5_K *)b, a, acc); break;
    default: row_q6_k(C, (const block_q6_K *)b, a, acc); break;
    }
}

// One weight row against C Q8_K activation rows a[c] -> out[c]
INLINE void kq_tile(const int type, const int C, int64_t nb, const char *w, const char *const *a,
                    float *out) {
    const size_t ws = kq_block_size(type);
    __m128 acc[KQ_MAXC];
    UNROLL for (int c = 0; c < C; c++) acc[c] = _mm_setzero_ps();
    for (int64_t ib = 0; ib < nb; ib++) {
        const block_q8_K *ab[KQ_MAXC];
        UNROLL for (int c = 0; c < C; c++) ab[c] = (const block_q8_K *)a[c] + ib;
        kq_row(type, C, w + (size_t)ib * ws, ab, acc);
    }
    UNROLL for (int c = 0; c < C; c++) out[c] = _mm_cvtss_f32(acc[c]);
}

// One row at a time: a single sequential weight stream (interleaving the streams of
// several rows was measured 2-2.5x slower from DRAM, see the top comment).
INLINE void kq_gemv(const int type, int64_t n, int64_t nrows, const void *w, size_t row_bytes,
                    const void *a, float *y) {
    const int64_t nb = n / QK_K;
    const char *wb = w;
    const char *ap[1] = {a};
    for (int64_t r = 0; r < nrows; r++) kq_tile(type, 1, nb, wb + (size_t)r * row_bytes, ap, y + r);
}

// Columns in groups of KQ_MAXC (then 2), each weight row decoded once per group; single
// remaining columns by gemv.
INLINE void kq_gemm_cols(const int type, const int C, int64_t nb, int64_t nrows, const char *wb,
                         size_t row_bytes, const char *const *ap, float *y, int64_t y_stride) {
    float out[KQ_MAXC];
    for (int64_t r = 0; r < nrows; r++) {
        kq_tile(type, C, nb, wb + (size_t)r * row_bytes, ap, out);
        UNROLL for (int c = 0; c < C; c++) y[c * y_stride + r] = out[c];
    }
}

// ---- gemm with repacked 8-row tiles ---------------------------------------------------
// For 4 or more columns the weights of 8 rows are repacked once per K range (RK_KB
// super-blocks) and reused for every column: register k (k = 0..63) of a super-block
// holds in int32 lane r the 4 unsigned codes of elements 4k..4k+3 of row r (Q2_K: q,
// Q3_K: q + 4, Q4_K / Q5_K: q, Q6_K: q + 32), gathered and decoded with the same bit
// operations as the per-row code. A column's 4 activation bytes of the same elements are
// broadcast; maddubs gives per row two int16 sums of 2 products, added over up to P
// registers of one scale group (no overflow: P * 2 * max code * 127 < 2^15), then madd
// with the row's (scale, scale) int16 pair gives exact int32 lanes, one per row:
//   isum = sum over groups; msum (Q2_K / Q4_K / Q5_K: mins x bsums) or the offset
//   correction (Q3_K / Q6_K: scales x bsums, isum -= offset * it) by madd of the rows'
//   int16 pairs with the broadcast pairs of Q8_K bsums;
// then the ref's float combine in 8 float lanes (one per row), every operation rounded
// separately, super-block after super-block. Across K ranges the accumulators of a column
// are kept in y (a float store / reload is exact), so the order is the ref's and the
// results are bitwise the ref's.
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
    __m256i q[RK_KB][64]; // codes
    __m256i s[RK_KB][16]; // (scale, scale) int16 pairs per group (8 for Q4_K / Q5_K, else 16)
    __m256i m[RK_KB][8];  // int16 pairs matching the bsums pairs (mins, or Q3_K / Q6_K scales)
    __m256 d[RK_KB], dm[RK_KB];
} rk_tile;

static _Thread_local rk_tile rk_tile_buf;

INLINE int rk_has_min(const int type) { return type != ROOST_TYPE_Q3_K && type != ROOST_TYPE_Q6_K; }
INLINE int rk_groups(const int type) { return type == ROOST_TYPE_Q4_K || type == ROOST_TYPE_Q5_K ? 8 : 16; }
// registers of one group summed as int16 before the madd
INLINE int rk_part(const int type) {
    return type == ROOST_TYPE_Q4_K ? 8 : type == ROOST_TYPE_Q6_K ? 2 : 4;
}

INLINE __m256i bytes_and(__m256i v, int m) { return _mm256_and_si256(v, _mm256_set1_epi32(m)); }
INLINE __m256i pair16(__m256i lo, __m256i hi) { return _mm256_or_si256(bytes_and(lo, 0xffff), _mm256_slli_epi32(hi, 16)); }

// Repack 8 rows (row r at w + r * rb), super-blocks kb0 .. kb0 + nkb - 1.
INLINE void rk_repack(const int type, const char *w, size_t rb, int64_t kb0, int nkb, rk_tile *T) {
    const size_t ws = kq_block_size(type);
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)rb));
#define G(off) _mm256_i32gather_epi32((const int *)(const void *)(b + (off)), idx, 1)
    for (int kb = 0; kb < nkb; kb++) {
        const char *b = w + (size_t)(kb0 + kb) * ws;
        __m256i *q = T->q[kb], *s = T->s[kb], *m = T->m[kb];
        __m256i dd;
        switch (type) {
        case ROOST_TYPE_Q2_K: {
            __m256i mn[16];
            UNROLL for (int i = 0; i < 4; i++) {
                const __m256i S = G(4 * i);
                UNROLL for (int j = 0; j < 4; j++) {
                    const __m256i sc = bytes_and(_mm256_srli_epi32(S, 8 * j), 0x0f);
                    s[4 * i + j] = _mm256_or_si256(sc, _mm256_slli_epi32(sc, 16));
                    mn[4 * i + j] = bytes_and(_mm256_srli_epi32(S, 8 * j + 4), 0x0f);
                }
            }
            UNROLL for (int i = 0; i < 8; i++) m[i] = pair16(mn[2 * i], mn[2 * i + 1]);
            UNROLL for (int h = 0; h < 2; h++)
                UNROLL for (int t = 0; t < 8; t++) {
                    const __m256i raw = G(16 + 32 * h + 4 * t);
                    UNROLL for (int k = 0; k < 4; k++)
                        q[32 * h + 8 * k + t] = bytes_and(k ? _mm256_srli_epi32(raw, 2 * k) : raw, 0x03030303);
                }
            dd = G(80);
            break;
        }
        case ROOST_TYPE_Q3_K: {
            const __m256i A0 = G(96), A1 = G(100), Tt = G(104);
            __m256i sv[16];
            UNROLL for (int j = 0; j < 16; j++) {
                const __m256i A = (j & 4) ? A1 : A0;
                const __m256i lo = bytes_and(_mm256_srli_epi32(A, 8 * (j & 3) + 4 * (j >> 3)), 0x0f);
                const __m256i hi = bytes_and(_mm256_srli_epi32(Tt, 8 * (j & 3) + 2 * (j >> 2)), 3);
                sv[j] = _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32));
                s[j] = pair16(sv[j], sv[j]);
            }
            UNROLL for (int i = 0; i < 8; i++) m[i] = pair16(sv[2 * i], sv[2 * i + 1]);
            __m256i hm[8];
            UNROLL for (int t = 0; t < 8; t++) hm[t] = G(4 * t);
            UNROLL for (int h = 0; h < 2; h++)
                UNROLL for (int t = 0; t < 8; t++) {
                    const __m256i raw = G(32 + 32 * h + 4 * t);
                    UNROLL for (int k = 0; k < 4; k++) {
                        const int hs = 4 * h + k;
                        const __m256i lo = bytes_and(k ? _mm256_srli_epi32(raw, 2 * k) : raw, 0x03030303);
                        const __m256i hb = bytes_and(hs ? _mm256_srli_epi32(hm[t], hs) : hm[t], 0x01010101);
                        q[32 * h + 8 * k + t] = _mm256_or_si256(lo, _mm256_slli_epi32(hb, 2));
                    }
                }
            dd = _mm256_srli_epi32(G(106), 16);
            break;
        }
        case ROOST_TYPE_Q4_K:
        case ROOST_TYPE_Q5_K: {
            const __m256i u0 = G(4), u1 = G(8), u2 = G(12);
            UNROLL for (int j = 0; j < 8; j++) {
                __m256i sc, mn;
                if (j < 4) {
                    sc = bytes_and(_mm256_srli_epi32(u0, 8 * j), 63);
                    mn = bytes_and(_mm256_srli_epi32(u1, 8 * j), 63);
                } else {
                    const int jj = 8 * (j - 4);
                    sc = _mm256_or_si256(bytes_and(_mm256_srli_epi32(u2, jj), 15),
                                         _mm256_slli_epi32(bytes_and(_mm256_srli_epi32(u0, jj + 6), 3), 4));
                    mn = _mm256_or_si256(bytes_and(_mm256_srli_epi32(u2, jj + 4), 15),
                                         _mm256_slli_epi32(bytes_and(_mm256_srli_epi32(u1, jj + 6), 3), 4));
                }
                s[j] = _mm256_or_si256(sc, _mm256_slli_epi32(sc, 16));
                m[j] = _mm256_or_si256(mn, _mm256_slli_epi32(mn, 16));
            }
            const int qoff = type == ROOST_TYPE_Q4_K ? 16 : 48;
            __m256i hq[8];
            if (type == ROOST_TYPE_Q5_K) {
                UNROLL for (int t = 0; t < 8; t++) hq[t] = G(16 + 4 * t);
            }
            UNROLL for (int j = 0; j < 4; j++)
                UNROLL for (int t = 0; t < 8; t++) {
                    const __m256i raw = G(qoff + 32 * j + 4 * t);
                    __m256i lo = bytes_and(raw, 0x0f0f0f0f), hi = bytes_and(_mm256_srli_epi32(raw, 4), 0x0f0f0f0f);
                    if (type == ROOST_TYPE_Q5_K) {
                        const int g = 2 * j;
                        lo = _mm256_or_si256(lo, _mm256_slli_epi32(bytes_and(g ? _mm256_srli_epi32(hq[t], g) : hq[t], 0x01010101), 4));
                        hi = _mm256_or_si256(hi, _mm256_slli_epi32(bytes_and(_mm256_srli_epi32(hq[t], g + 1), 0x01010101), 4));
                    }
                    q[16 * j + t] = lo;
                    q[16 * j + 8 + t] = hi;
                }
            dd = G(0);
            break;
        }
        default: { // Q6_K
            __m256i sv[16];
            UNROLL for (int i = 0; i < 4; i++) {
                const __m256i S = G(192 + 4 * i);
                UNROLL for (int j = 0; j < 4; j++) {
                    sv[4 * i + j] = _mm256_srai_epi32(_mm256_slli_epi32(S, 24 - 8 * j), 24);
                    s[4 * i + j] = pair16(sv[4 * i + j], sv[4 * i + j]);
                }
            }
            UNROLL for (int i = 0; i < 8; i++) m[i] = pair16(sv[2 * i], sv[2 * i + 1]);
            UNROLL for (int h = 0; h < 2; h++)
                UNROLL for (int t = 0; t < 8; t++) {
                    const __m256i L0 = G(64 * h + 4 * t), L1 = G(64 * h + 32 + 4 * t), H = G(128 + 32 * h + 4 * t);
                    const int k = 32 * h + t;
                    q[k] = _mm256_or_si256(bytes_and(L0, 0x0f0f0f0f), bytes_and(_mm256_slli_epi32(H, 4), 0x30303030));
                    q[k + 8] = _mm256_or_si256(bytes_and(L1, 0x0f0f0f0f), bytes_and(_mm256_slli_epi32(H, 2), 0x30303030));
                    q[k + 16] = _mm256_or_si256(bytes_and(_mm256_srli_epi32(L0, 4), 0x0f0f0f0f), bytes_and(H, 0x30303030));
                    q[k + 24] = _mm256_or_si256(bytes_and(_mm256_srli_epi32(L1, 4), 0x0f0f0f0f),
                                                bytes_and(_mm256_srli_epi32(H, 2), 0x30303030));
                }
            dd = _mm256_srli_epi32(G(206), 16);
            break;
        }
        }
        // fp16 in the low 16 bits of each lane -> 8 halves -> floats
        const __m256i pk = _mm256_shuffle_epi8(dd, _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                                                    0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1));
        T->d[kb] = _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_permute4x64_epi64(pk, 0x08)));
        if (rk_has_min(type)) {
            const __m256i pm = _mm256_shuffle_epi8(dd, _mm256_setr_epi8(2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1,
                                                                        2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1));
            T->dm[kb] = _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_permute4x64_epi64(pm, 0x08)));
        }
    }
#undef G
}

// C columns (activation rows a + c * a_stride, pointing at super-block kb0) x the 8 rows
// of T, super-blocks 0 .. nkb - 1 of the range; accumulators in y[c * y_stride + 0..7].
INLINE void rk_cols(const int type, const int C, int first, int nkb, const rk_tile *T, const char *a,
                    size_t a_stride, float *y, int64_t y_stride) {
    const int NG = rk_groups(type), D = 64 / NG, P = rk_part(type);
    const block_q8_K *ap[8];
    __m256 acc[8];
    UNROLL for (int c = 0; c < C; c++) {
        ap[c] = (const block_q8_K *)(a + (size_t)c * a_stride);
        acc[c] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(y + c * y_stride);
    }
    for (int kb = 0; kb < nkb; kb++) {
        __m256i is[8];
        UNROLL for (int c = 0; c < C; c++) is[c] = _mm256_setzero_si256();
        UNROLL for (int g = 0; g < NG; g++) {
            const __m256i sg = _mm256_load_si256(&T->s[kb][g]);
            UNROLL for (int k0 = D * g; k0 < D * g + D; k0 += P) {
                __m256i h[8];
                UNROLL for (int k = k0; k < k0 + P; k++) {
                    const __m256i wk = _mm256_load_si256(&T->q[kb][k]);
                    UNROLL for (int c = 0; c < C; c++) {
                        const __m256i pr = _mm256_maddubs_epi16(wk, _mm256_set1_epi32((int)load_u32(ap[c][kb].qs + 4 * k)));
                        h[c] = k == k0 ? pr : _mm256_add_epi16(h[c], pr);
                    }
                }
                UNROLL for (int c = 0; c < C; c++) is[c] = _mm256_add_epi32(is[c], _mm256_madd_epi16(h[c], sg));
            }
        }
        __m256i ms[8];
        UNROLL for (int c = 0; c < C; c++) ms[c] = _mm256_setzero_si256();
        UNROLL for (int i = 0; i < 8; i++) {
            const __m256i mi = _mm256_load_si256(&T->m[kb][i]);
            UNROLL for (int c = 0; c < C; c++)
                ms[c] = _mm256_add_epi32(ms[c], _mm256_madd_epi16(mi, _mm256_set1_epi32((int)load_u32(&ap[c][kb].bsums[2 * i]))));
        }
        const __m256 dw = T->d[kb];
        UNROLL for (int c = 0; c < C; c++) {
            const __m256 ad = _mm256_set1_ps(ap[c][kb].d);
            if (rk_has_min(type)) {
                const __m256 t = _mm256_mul_ps(_mm256_mul_ps(dw, ad), _mm256_cvtepi32_ps(is[c]));
                const __m256 u = _mm256_mul_ps(_mm256_mul_ps(T->dm[kb], ad), _mm256_cvtepi32_ps(ms[c]));
                acc[c] = _mm256_add_ps(acc[c], _mm256_sub_ps(t, u));
            } else {
                const __m256i isum = _mm256_sub_epi32(is[c], _mm256_slli_epi32(ms[c], type == ROOST_TYPE_Q3_K ? 2 : 5));
                acc[c] = _mm256_add_ps(acc[c], _mm256_mul_ps(_mm256_mul_ps(dw, ad), _mm256_cvtepi32_ps(isum)));
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) _mm256_storeu_ps(y + c * y_stride, acc[c]);
}

// nrows8 (a multiple of 8) rows x ncols columns by repacked tiles.
INLINE void kq_gemm_repacked(const int type, int64_t nb, int64_t nrows8, const char *w, size_t row_bytes,
                             int64_t ncols, const char *a, size_t a_stride, float *y, int64_t y_stride) {
    rk_tile *T = &rk_tile_buf;
    for (int64_t c0 = 0; c0 < ncols; c0 += RK_CC) {
        const int64_t cc = ncols - c0 < RK_CC ? ncols - c0 : RK_CC;
        const char *ac = a + (size_t)c0 * a_stride;
        for (int64_t kb0 = 0; kb0 < nb; kb0 += RK_KB) {
            const int nkb = (int)(nb - kb0 < RK_KB ? nb - kb0 : RK_KB);
            const char *ak = ac + (size_t)kb0 * sizeof(block_q8_K);
            for (int64_t r = 0; r < nrows8; r += 8) {
                rk_repack(type, w + (size_t)r * row_bytes, row_bytes, kb0, nkb, T);
                float *yt = y + c0 * y_stride + r;
                int64_t c = 0;
                for (; c + RK_C <= cc; c += RK_C)
                    rk_cols(type, RK_C, kb0 == 0, nkb, T, ak + (size_t)c * a_stride, a_stride, yt + c * y_stride, y_stride);
                if (RK_C > 2 && c + 2 <= cc) {
                    rk_cols(type, 2, kb0 == 0, nkb, T, ak + (size_t)c * a_stride, a_stride, yt + c * y_stride, y_stride);
                    c += 2;
                }
                for (; c < cc; c++)
                    rk_cols(type, 1, kb0 == 0, nkb, T, ak + (size_t)c * a_stride, a_stride, yt + c * y_stride, y_stride);
            }
        }
    }
}

INLINE void kq_gemm_small(const int type, int64_t n, int64_t nrows, const void *w, size_t row_bytes,
                          int64_t ncols, const void *a, size_t a_stride, float *y, int64_t y_stride) {
    const int64_t nb = n / QK_K;
    const char *wb = w, *ab = a;
    int64_t c = 0;
    for (; c + KQ_MAXC <= ncols; c += KQ_MAXC) {
        const char *ap[KQ_MAXC];
        UNROLL for (int i = 0; i < KQ_MAXC; i++) ap[i] = ab + (size_t)(c + i) * a_stride;
        kq_gemm_cols(type, KQ_MAXC, nb, nrows, wb, row_bytes, ap, y + c * y_stride, y_stride);
    }
    if (c + 2 <= ncols) {
        const char *ap[2] = {ab + (size_t)c * a_stride, ab + (size_t)(c + 1) * a_stride};
        kq_gemm_cols(type, 2, nb, nrows, wb, row_bytes, ap, y + c * y_stride, y_stride);
        c += 2;
    }
    for (; c < ncols; c++) kq_gemv(type, n, nrows, w, row_bytes, ab + (size_t)c * a_stride, y + c * y_stride);
}

// Columns below which the 1-row tiles (each row decoded once per group of up to 4
// columns) beat the repacked ones: decode steps of a few sequences (measured on Zen 4,
// Q4_K 3072 x 768, 4 columns: repacked about 3.5x slower than 1-row tiles).
#ifndef KQ_SMALL_COLS
#define KQ_SMALL_COLS 8
#endif

// Repacked 8-row tiles for KQ_SMALL_COLS or more columns; the rows past a multiple of 8
// (and fewer columns) by the 1-row tiles.
INLINE void kq_gemm(const int type, int64_t n, int64_t nrows, const void *w, size_t row_bytes,
                    int64_t ncols, const void *a, size_t a_stride, float *y, int64_t y_stride) {
    const int64_t nrows8 = nrows & ~(int64_t)7;
    if (ncols < KQ_SMALL_COLS || nrows8 == 0 || row_bytes > (size_t)(INT32_MAX / 8)) {
        kq_gemm_small(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);
        return;
    }
    kq_gemm_repacked(type, n / QK_K, nrows8, w, row_bytes, ncols, a, a_stride, y, y_stride);
    if (nrows8 < nrows)
        kq_gemm_small(type, n, nrows - nrows8, (const char *)w + (size_t)nrows8 * row_bytes, row_bytes, ncols, a,
                      a_stride, y + nrows8, y_stride);
}

// The 1-row tiles for the AVX-512 table's few-column gemm (internal.h): on CPUs that run
// 512-bit instructions at half rate they beat the AVX-512 4 x 2 tiles, and both give the
// ref's bits.
TARGET void roost_kq_gemm_small_avx2(int type, int64_t n, int64_t nrows, const void *w, size_t row_bytes,
                                     int64_t ncols, const void *a, size_t a_stride, float *y, int64_t y_stride) {
    kq_gemm_small(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);
}

#define KQ_KERNELS(name, type)                                                                \
    TARGET static void gemv_##name##_avx2(int64_t n, int64_t nrows, const void *w,           \
                                          size_t row_bytes, const void *a, float *y) {       \
        kq_gemv(type, n, nrows, w, row_bytes, a, y);                                         \
    }                                                                                        \
    TARGET static void gemm_##name##_avx2(int64_t n, int64_t nrows, const void *w,           \
                                          size_t row_bytes, int64_t ncols, const void *a,    \
                                          size_t a_stride, float *y, int64_t y_stride) {     \
        kq_gemm(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);              \
    }

KQ_KERNELS(q2_k, ROOST_TYPE_Q2_K)
KQ_KERNELS(q3_k, ROOST_TYPE_Q3_K)
KQ_KERNELS(q4_k, ROOST_TYPE_Q4_K)
KQ_KERNELS(q5_k, ROOST_TYPE_Q5_K)
KQ_KERNELS(q6_k, ROOST_TYPE_Q6_K)

// ---- Q8_K quantize: bitwise equal to the ref ------------------------------------------

TARGET static void quantize_q8_k_avx2(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    const __m256 absmask = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *xb = x + i * QK_K;
        // amax; NaN lanes lose (max_ps returns its second operand then), as in the ref
        __m256 mx = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8) mx = _mm256_max_ps(_mm256_andnot_ps(absmask, _mm256_loadu_ps(xb + j)), mx);
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (!(amax > 0.0f)) {
            y[i].d = 0.0f;
            memset(y[i].qs, 0, sizeof y[i].qs);
            memset(y[i].bsums, 0, sizeof y[i].bsums);
            continue;
        }
        // max = the first element with |x| == amax
        const __m256 av = _mm256_set1_ps(amax);
        float max = 0.0f;
        for (int j = 0; j < QK_K; j += 8) {
            const __m256 e = _mm256_cmp_ps(_mm256_andnot_ps(absmask, _mm256_loadu_ps(xb + j)), av, _CMP_EQ_OQ);
            const int bits = _mm256_movemask_ps(e);
            if (bits) {
                max = xb[j + __builtin_ctz((unsigned)bits)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m256 is = _mm256_set1_ps(iscale);
        const __m256 magic = _mm256_set1_ps(12582912.0f);
        const __m256i mant = _mm256_set1_epi32(0x007fffff), off = _mm256_set1_epi32(0x00400000);
        const __m256i q127 = _mm256_set1_epi32(127), qm127 = _mm256_set1_epi32(-127);
        __m256i gsum[16];
        UNROLL for (int g = 0; g < 16; g++) {
            __m256i q[2];
            UNROLL for (int h = 0; h < 2; h++) {
                const __m256 v = _mm256_mul_ps(is, _mm256_loadu_ps(xb + 16 * g + 8 * h));
                const __m256i t = _mm256_castps_si256(_mm256_add_ps(v, magic));
                __m256i qi = _mm256_sub_epi32(_mm256_and_si256(t, mant), off);
                qi = _mm256_max_epi32(_mm256_min_epi32(qi, q127), qm127);
                q[h] = qi;
            }
            gsum[g] = _mm256_add_epi32(q[0], q[1]);
            // 16 int32 -> 16 int8 in order
            const __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(q[0]), _mm256_extracti128_si256(q[0], 1));
            const __m128i p16b = _mm_packs_epi32(_mm256_castsi256_si128(q[1]), _mm256_extracti128_si256(q[1], 1));
            _mm_storeu_si128((__m128i *)(y[i].qs + 16 * g), _mm_packs_epi16(p16, p16b));
        }
        // bsums: horizontal sums of gsum[0..15]
        __m256i s4[4];
        UNROLL for (int k = 0; k < 4; k++) {
            const __m256i h01 = _mm256_hadd_epi32(gsum[4 * k], gsum[4 * k + 1]);
            const __m256i h23 = _mm256_hadd_epi32(gsum[4 * k + 2], gsum[4 * k + 3]);
            const __m256i hh = _mm256_hadd_epi32(h01, h23); // lane halves of the 4 sums
            s4[k] = hh;
        }
        // s4[k] low lane + high lane = sums of groups 4k..4k+3
        const __m256i s01 = _mm256_add_epi32(_mm256_permute2x128_si256(s4[0], s4[1], 0x20),
                                             _mm256_permute2x128_si256(s4[0], s4[1], 0x31));
        const __m256i s23 = _mm256_add_epi32(_mm256_permute2x128_si256(s4[2], s4[3], 0x20),
                                             _mm256_permute2x128_si256(s4[2], s4[3], 0x31));
        // packs interleaves lanes: [s01 lo, s23 lo | s01 hi, s23 hi] -> permute back
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(s01, s23), 0xd8);
        _mm256_storeu_si256((__m256i *)y[i].bsums, p);
        y[i].d = 1.0f / iscale;
    }
}

// ---- dequantize: bitwise equal to the ref ---------------------------------------------

// 16 int8 quants -> y[0..15] = dl * q (- ml)
INLINE void store16(__m128i q, float dl, float ml, const int has_m, float *y) {
    const __m256 d = _mm256_set1_ps(dl), m = _mm256_set1_ps(ml);
    __m256 f0 = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
    __m256 f1 = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))));
    if (has_m) {
        f0 = _mm256_sub_ps(f0, m);
        f1 = _mm256_sub_ps(f1, m);
    }
    _mm256_storeu_ps(y, f0);
    _mm256_storeu_ps(y + 8, f1);
}

TARGET static void dequantize_q2_k_avx2(const void *vx, float *y, int64_t n) {
    const block_q2_K *x = vx;
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        float *yb = y + i * QK_K;
        UNROLL for (int h = 0; h < 2; h++) {
            __m256i bits = loadu256(x[i].qs + 32 * h);
            UNROLL for (int t = 0; t < 4; t++) {
                const int k = 4 * h + t;
                const __m256i q = _mm256_and_si256(bits, m3);
                bits = _mm256_srli_epi16(bits, 2);
                UNROLL for (int e = 0; e < 2; e++) {
                    const int g = 2 * k + e;
                    const float dl = d * (float)(x[i].scales[g] & 0x0f);
                    const float ml = dmin * (float)(x[i].scales[g] >> 4);
                    const __m128i qq = e ? _mm256_extracti128_si256(q, 1) : _mm256_castsi256_si128(q);
                    store16(qq, dl, ml, 1, yb + 16 * g);
                }
            }
        }
    }
}

TARGET static void dequantize_q3_k_avx2(const void *vx, float *y, int64_t n) {
    const block_q3_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(x[i].d);
        int8_t sc[16];
        _mm_storeu_si128((__m128i *)sc, scales_q3_k(x[i].scales));
        float *yb = y + i * QK_K;
        const __m256i hm = loadu256(x[i].hmask);
        UNROLL for (int h = 0; h < 2; h++) {
            const __m256i bits = loadu256(x[i].qs + 32 * h);
            UNROLL for (int t = 0; t < 4; t++) {
                const int k = 4 * h + t;
                const __m256i q = _mm256_sub_epi8(q3_chunk(bits, hm, k), _mm256_set1_epi8(4));
                UNROLL for (int e = 0; e < 2; e++) {
                    const int g = 2 * k + e;
                    const float dl = d * (float)sc[g];
                    const __m128i qq = e ? _mm256_extracti128_si256(q, 1) : _mm256_castsi256_si128(q);
                    store16(qq, dl, 0.0f, 0, yb + 16 * g);
                }
            }
        }
    }
}

// Q4_K / Q5_K: 32 quants of group g -> y[0..31] = (d * sc) * q - dmin * m
INLINE void store32_k4(__m256i q, float d, float dmin, const uint8_t *smb, const int g, float *y) {
    const float dl = d * (float)smb[g], ml = dmin * (float)smb[8 + g];
    store16(_mm256_castsi256_si128(q), dl, ml, 1, y);
    store16(_mm256_extracti128_si256(q, 1), dl, ml, 1, y + 16);
}

TARGET static void dequantize_q4_k_avx2(const void *vx, float *y, int64_t n) {
    const block_q4_K *x = vx;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        uint8_t smb[16];
        _mm_storeu_si128((__m128i *)smb, _mm256_castsi256_si128(scales_mins_k4(x[i].scales)));
        float *yb = y + i * QK_K;
        UNROLL for (int j = 0; j < 4; j++) {
            const __m256i bits = loadu256(x[i].qs + 32 * j);
            store32_k4(_mm256_and_si256(bits, m4), d, dmin, smb, 2 * j, yb + 64 * j);
            store32_k4(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), d, dmin, smb, 2 * j + 1, yb + 64 * j + 32);
        }
    }
}

TARGET static void dequantize_q5_k_avx2(const void *vx, float *y, int64_t n) {
    const block_q5_K *x = vx;
    const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        uint8_t smb[16];
        _mm_storeu_si128((__m128i *)smb, _mm256_castsi256_si128(scales_mins_k4(x[i].scales)));
        float *yb = y + i * QK_K;
        __m256i hb = loadu256(x[i].qh);
        UNROLL for (int j = 0; j < 4; j++) {
            const __m256i bits = loadu256(x[i].qs + 32 * j);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4),
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 4), b4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 3), b4));
            hb = _mm256_srli_epi16(hb, 2);
            store32_k4(lo, d, dmin, smb, 2 * j, yb + 64 * j);
            store32_k4(hi, d, dmin, smb, 2 * j + 1, yb + 64 * j + 32);
        }
    }
}

TARGET static void dequantize_q6_k_avx2(const void *vx, float *y, int64_t n) {
    const block_q6_K *x = vx;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30), o32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(x[i].d);
        float *yb = y + i * QK_K;
        UNROLL for (int h = 0; h < 2; h++) {
            const __m256i l0 = loadu256(x[i].ql + 64 * h);
            const __m256i l1 = loadu256(x[i].ql + 64 * h + 32);
            const __m256i qh = loadu256(x[i].qh + 32 * h);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            UNROLL for (int t = 0; t < 4; t++) {
                const int k = 4 * h + t;
                const __m256i qs = _mm256_sub_epi8(q[t], o32);
                UNROLL for (int e = 0; e < 2; e++) {
                    const int g = 2 * k + e;
                    const float dl = d * (float)x[i].scales[g];
                    const __m128i qq = e ? _mm256_extracti128_si256(qs, 1) : _mm256_castsi256_si128(qs);
                    store16(qq, dl, 0.0f, 0, yb + 16 * g);
                }
            }
        }
    }
}

TARGET static void dequantize_q8_k_avx2(const void *vx, float *y, int64_t n) {
    const block_q8_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++)
        UNROLL for (int g = 0; g < 16; g++) store16(loadu128(x[i].qs + 16 * g), x[i].d, 0.0f, 0, y + i * QK_K + 16 * g);
}

void roost_register_avx2_kquants(roost_kernels *k) {
    k->quantize[ROOST_TYPE_Q8_K] = quantize_q8_k_avx2;

    k->dequantize[ROOST_TYPE_Q2_K] = dequantize_q2_k_avx2;
    k->dequantize[ROOST_TYPE_Q3_K] = dequantize_q3_k_avx2;
    k->dequantize[ROOST_TYPE_Q4_K] = dequantize_q4_k_avx2;
    k->dequantize[ROOST_TYPE_Q5_K] = dequantize_q5_k_avx2;
    k->dequantize[ROOST_TYPE_Q6_K] = dequantize_q6_k_avx2;
    k->dequantize[ROOST_TYPE_Q8_K] = dequantize_q8_k_avx2;

    k->gemv[ROOST_TYPE_Q2_K] = gemv_q2_k_avx2;
    k->gemv[ROOST_TYPE_Q3_K] = gemv_q3_k_avx2;
    k->gemv[ROOST_TYPE_Q4_K] = gemv_q4_k_avx2;
    k->gemv[ROOST_TYPE_Q5_K] = gemv_q5_k_avx2;
    k->gemv[ROOST_TYPE_Q6_K] = gemv_q6_k_avx2;

    k->gemm[ROOST_TYPE_Q2_K] = gemm_q2_k_avx2;
    k->gemm[ROOST_TYPE_Q3_K] = gemm_q3_k_avx2;
    k->gemm[ROOST_TYPE_Q4_K] = gemm_q4_k_avx2;
    k->gemm[ROOST_TYPE_Q5_K] = gemm_q5_k_avx2;
    k->gemm[ROOST_TYPE_Q6_K] = gemm_q6_k_avx2;
}

#else

void roost_register_avx2_kquants(roost_kernels *k) { (void)k; }

#endif
