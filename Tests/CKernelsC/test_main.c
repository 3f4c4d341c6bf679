// C kernel tests, run by `make test-c` natively and (cross-compiled) under qemu-aarch64.
//
// For every kernel path the running CPU has:
//   - dequantize and activation quantize are bitwise equal to the ref path;
//   - gemv is bitwise the ref's for quantized weights and within a rounding bound of it
//     for float weights, and the ref path is within a rounding bound of an independent
//     double-precision oracle (the double dot product
//     of the ref-dequantized weight row and the ref-dequantized activation row);
//   - gemv gives bitwise the same row results whatever the row split is, and gemm gives
//     bitwise what gemv gives for each activation column, writing nothing else.
// Prints "N passed, M failed" and exits non-zero on any failure.
#include "internal.h"
#include "test_blocks.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static long n_passed, n_failed;
static const char *cur_path = "";

void roost_test_check(int ok, const char *fmt, ...) {
    if (ok) {
        n_passed++;
        return;
    }
    n_failed++;
    if (n_failed <= 60) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "FAIL [%s] ", cur_path);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
}

#define check roost_test_check

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static const int32_t weight_types[] = {
    ROOST_TYPE_F32,  ROOST_TYPE_F16,  ROOST_TYPE_BF16, ROOST_TYPE_Q4_0, ROOST_TYPE_Q4_1,
    ROOST_TYPE_Q5_0, ROOST_TYPE_Q5_1, ROOST_TYPE_Q8_0, ROOST_TYPE_Q2_K, ROOST_TYPE_Q3_K,
    ROOST_TYPE_Q4_K, ROOST_TYPE_Q5_K, ROOST_TYPE_Q6_K,
};
#define N_WEIGHT_TYPES ((int)(sizeof weight_types / sizeof weight_types[0]))

static const int32_t act_types[] = {ROOST_TYPE_Q8_0, ROOST_TYPE_Q8_1, ROOST_TYPE_Q8_K};
#define N_ACT_TYPES ((int)(sizeof act_types / sizeof act_types[0]))

static int is_float_type(int32_t t) {
    return t == ROOST_TYPE_F32 || t == ROOST_TYPE_F16 || t == ROOST_TYPE_BF16;
}

static const char *tname(int32_t t) { return roost_type_traits_get(t)->name; }

static size_t row_size(int32_t t, int64_t n) {
    const roost_type_traits *tr = roost_type_traits_get(t);
    return (size_t)(n / tr->block_size) * (size_t)tr->type_size;
}

// n elements of random valid blocks of type t.
static void random_blocks(int32_t t, void *dst, int64_t n, uint64_t *rng) {
    const roost_type_traits *tr = roost_type_traits_get(t);
    char *p = dst;
    for (int64_t i = 0; i < n / tr->block_size; i++) {
        const int ok = roost_test_random_block_legacy(t, p, rng) ||
                       roost_test_random_block_kquants(t, p, rng);
        if (!ok) {
            fprintf(stderr, "no random block generator for %s\n", tr->name);
            exit(2);
        }
        p += tr->type_size;
    }
}

// Activation-like floats: per 32 values a random scale over 12 octaves; some blocks
// all zero, some with a single outlier.
static void random_floats(float *x, int64_t n, uint64_t *rng) {
    for (int64_t i = 0; i < n; i += 32) {
        const int64_t m = n - i < 32 ? n - i : 32;
        const uint64_t kind = roost_test_rng_next(rng) % 16;
        const float scale = roost_test_rng_scale(rng, -6, 6, 0);
        for (int64_t j = 0; j < m; j++) x[i + j] = kind == 0 ? 0.0f : roost_test_rng_sym(rng) * scale;
        if (kind == 1) x[i + (int64_t)(roost_test_rng_next(rng) % (uint64_t)m)] = scale * 50.0f;
    }
}

static int bits_equal(const float *a, const float *b, int64_t n) {
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

// ---- traits ------------------------------------------------------------------------

static void test_traits(void) {
    cur_path = "traits";
    static const struct { int32_t t; int bs, ts; } want[] = {
        {ROOST_TYPE_F32, 1, 4},     {ROOST_TYPE_F16, 1, 2},     {ROOST_TYPE_BF16, 1, 2},
        {ROOST_TYPE_Q4_0, 32, 18},  {ROOST_TYPE_Q4_1, 32, 20},  {ROOST_TYPE_Q5_0, 32, 22},
        {ROOST_TYPE_Q5_1, 32, 24},  {ROOST_TYPE_Q8_0, 32, 34},  {ROOST_TYPE_Q8_1, 32, 36},
        {ROOST_TYPE_Q2_K, 256, 84}, {ROOST_TYPE_Q3_K, 256, 110}, {ROOST_TYPE_Q4_K, 256, 144},
        {ROOST_TYPE_Q5_K, 256, 176}, {ROOST_TYPE_Q6_K, 256, 210}, {ROOST_TYPE_Q8_K, 256, 292},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const roost_type_traits *tr = roost_type_traits_get(want[i].t);
        check(tr && tr->block_size == want[i].bs && tr->type_size == want[i].ts,
              "traits of type %d", want[i].t);
    }
    check(roost_type_traits_get(4) == NULL && roost_type_traits_get(-1) == NULL &&
              roost_type_traits_get(ROOST_TYPE_COUNT) == NULL,
          "unknown types have no traits");
}

// ---- tables ------------------------------------------------------------------------

static void test_table_complete(const roost_kernels *k) {
    for (int i = 0; i < N_WEIGHT_TYPES; i++) {
        const int32_t t = weight_types[i];
        check(k->dequantize[t] != NULL, "dequantize %s missing", tname(t));
        check(k->gemv[t] != NULL, "gemv %s missing", tname(t));
        check(k->gemm[t] != NULL, "gemm %s missing", tname(t));
    }
    for (int i = 0; i < N_ACT_TYPES; i++) {
        const int32_t t = act_types[i];
        check(k->quantize[t] != NULL, "quantize %s missing", tname(t));
        check(k->dequantize[t] != NULL, "dequantize %s missing", tname(t));
    }
}

// ---- dequantize: path == ref, bitwise ---------------------------------------------

static void test_dequantize(const roost_kernels *k, const roost_kernels *ref, uint64_t *rng) {
    static const int32_t types[] = {
        ROOST_TYPE_F32,  ROOST_TYPE_F16,  ROOST_TYPE_BF16, ROOST_TYPE_Q4_0, ROOST_TYPE_Q4_1,
        ROOST_TYPE_Q5_0, ROOST_TYPE_Q5_1, ROOST_TYPE_Q8_0, ROOST_TYPE_Q8_1, ROOST_TYPE_Q2_K,
        ROOST_TYPE_Q3_K, ROOST_TYPE_Q4_K, ROOST_TYPE_Q5_K, ROOST_TYPE_Q6_K, ROOST_TYPE_Q8_K,
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const int32_t t = types[i];
        if (!k->dequantize[t] || !ref->dequantize[t]) continue; // reported by the table test
        const int bs = roost_type_traits_get(t)->block_size;
        const int64_t sizes[] = {bs == 1 ? 1001 : (int64_t)bs * 37, bs == 1 ? 7 : bs};
        for (int s = 0; s < 2; s++) {
            const int64_t n = sizes[s];
            void *blocks = xmalloc(row_size(t, n));
            float *a = xmalloc((size_t)n * sizeof(float));
            float *b = xmalloc((size_t)n * sizeof(float));
            random_blocks(t, blocks, n, rng);
            ref->dequantize[t](blocks, a, n);
            k->dequantize[t](blocks, b, n);
            check(bits_equal(a, b, n), "dequantize %s n=%lld differs from ref", tname(t), (long long)n);
            free(blocks);
            free(a);
            free(b);
        }
    }
}

// ---- activation quantize -----------------------------------------------------------

// Ref quantizer sanity: values round-trip within a rounding step, no -128, sums right.
static void check_quantized(int32_t t, const float *x, const void *q, int64_t n,
                            const roost_kernels *ref) {
    float *y = xmalloc((size_t)n * sizeof(float));
    ref->dequantize[t](q, y, n);
    const int bs = roost_type_traits_get(t)->block_size;
    int ok_err = 1, ok_128 = 1, ok_sum = 1;
    for (int64_t ib = 0; ib < n / bs; ib++) {
        const int8_t *qs;
        float d;
        if (t == ROOST_TYPE_Q8_0) {
            const block_q8_0 *b = (const block_q8_0 *)q + ib;
            qs = b->qs;
            d = roost_fp16_to_fp32(b->d);
        } else if (t == ROOST_TYPE_Q8_1) {
            const block_q8_1 *b = (const block_q8_1 *)q + ib;
            qs = b->qs;
            d = roost_fp16_to_fp32(b->d);
            // s = fp16(sum * d) with the float scale before its fp16 rounding, as ggml
            float amax = 0.0f;
            for (int j = 0; j < bs; j++) amax = fmaxf(amax, fabsf(x[ib * bs + j]));
            int sum = 0;
            for (int j = 0; j < bs; j++) sum += qs[j];
            if (b->s != roost_fp32_to_fp16((float)sum * (amax / 127.0f))) ok_sum = 0;
        } else {
            const block_q8_K *b = (const block_q8_K *)q + ib;
            qs = b->qs;
            d = fabsf(b->d);
            for (int g = 0; g < QK_K / 16; g++) {
                int sum = 0;
                for (int j = 0; j < 16; j++) sum += qs[g * 16 + j];
                if (sum != b->bsums[g]) ok_sum = 0;
            }
        }
        float amax = 0.0f;
        for (int j = 0; j < bs; j++) amax = fmaxf(amax, fabsf(x[ib * bs + j]));
        for (int j = 0; j < bs; j++) {
            if (qs[j] == -128) ok_128 = 0;
            // half a step, plus the fp16 rounding of the scale (at most 127 * d * 2^-11)
            const float bound = 0.5f * d + 0.07f * d + amax * 1e-6f;
            if (!(fabsf(y[ib * bs + j] - x[ib * bs + j]) <= bound)) ok_err = 0;
        }
    }
    check(ok_err, "quantize %s: dequantized values not within a rounding step", tname(t));
    check(ok_128, "quantize %s: produced -128", tname(t));
    check(ok_sum, "quantize %s: block sums wrong", tname(t));
    free(y);
}

static void test_quantize(const roost_kernels *k, const roost_kernels *ref, int is_ref, uint64_t *rng) {
    for (int i = 0; i < N_ACT_TYPES; i++) {
        const int32_t t = act_types[i];
        if (!k->quantize[t] || !ref->quantize[t] || !ref->dequantize[t]) continue;
        const int64_t sizes[] = {256, 256 * 9};
        for (int s = 0; s < 2; s++) {
            const int64_t n = sizes[s];
            float *x = xmalloc((size_t)n * sizeof(float));
            random_floats(x, n, rng);
            const size_t bytes = row_size(t, n);
            char *qa = xmalloc(bytes), *qb = xmalloc(bytes);
            memset(qa, 0x55, bytes);
            memset(qb, 0xaa, bytes);
            ref->quantize[t](x, qa, n);
            k->quantize[t](x, qb, n);
            check(memcmp(qa, qb, bytes) == 0, "quantize %s n=%lld differs from ref", tname(t), (long long)n);
            if (is_ref) check_quantized(t, x, qa, n, ref);
            free(x);
            free(qa);
            free(qb);
        }
    }
}

// ---- gemv / gemm ---------------------------------------------------------------------

typedef struct {
    int32_t t, at;     // weight type, activation type (F32 for float weights)
    int64_t n, nrows;
    size_t row_bytes;  // weight row stride (may include padding)
    char *w;
    float *wf;         // ref-dequantized weights [nrows][n]
} matrix;

static matrix make_matrix(int32_t t, int64_t n, int64_t nrows, size_t pad, const roost_kernels *ref,
                          uint64_t *rng) {
    matrix m = {t, roost_type_traits_get(t)->vec_dot_type, n, nrows, row_size(t, n) + pad, NULL, NULL};
    m.w = xmalloc(m.row_bytes * (size_t)nrows);
    memset(m.w, 0xcd, m.row_bytes * (size_t)nrows);
    m.wf = xmalloc((size_t)(n * nrows) * sizeof(float));
    for (int64_t r = 0; r < nrows; r++) {
        random_blocks(t, m.w + (size_t)r * m.row_bytes, n, rng);
        ref->dequantize[t](m.w + (size_t)r * m.row_bytes, m.wf + r * n, n);
    }
    return m;
}

static void free_matrix(matrix *m) {
    free(m->w);
    free(m->wf);
}

// Activation row: random floats, quantized by the ref quantizer to the weight type's
// vec_dot_type; af gets the ref-dequantized values the oracle uses.
static size_t act_row_bytes(int32_t at, int64_t n) {
    return at == ROOST_TYPE_F32 ? (size_t)n * sizeof(float) : row_size(at, n);
}

static void make_act(int32_t at, int64_t n, void *dst, float *af, const roost_kernels *ref, uint64_t *rng) {
    float *x = xmalloc((size_t)n * sizeof(float));
    random_floats(x, n, rng);
    if (at == ROOST_TYPE_F32) {
        memcpy(dst, x, (size_t)n * sizeof(float));
        memcpy(af, x, (size_t)n * sizeof(float));
    } else {
        ref->quantize[at](x, dst, n);
        ref->dequantize[at](dst, af, n);
    }
    free(x);
}

// Magnitude scale of a dot product: per 16 elements, max |w| times sum |a|. Rounding
// errors of any summation order (and of cancelling min terms) are bounded by it.
static double magnitude(const float *w, const float *a, int64_t n) {
    double mag = 0.0;
    for (int64_t i = 0; i < n; i += 16) {
        double wmax = 0.0, asum = 0.0;
        for (int64_t j = i; j < n && j < i + 16; j++) {
            wmax = fmax(wmax, fabs((double)w[j]));
            asum += fabs((double)a[j]);
        }
        mag += wmax * asum;
    }
    return mag;
}

static double oracle_dot(const float *w, const float *a, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)w[i] * (double)a[i];
    return s;
}

// Relative (to the magnitude) bound of float summation over the accumulated terms.
static double accum_tol(int32_t t, int64_t n) {
    const double terms = is_float_type(t) ? (double)n : (double)n / 16.0;
    return (terms + 8.0) * 1.2e-7;
}

// The Q4_1 / Q5_1 dots use the Q8_1 block sum s, stored in fp16 (as ggml does).
static double format_tol(int32_t t) {
    return (t == ROOST_TYPE_Q4_1 || t == ROOST_TYPE_Q5_1) ? 1.0e-3 : 0.0;
}

static void test_gemv_gemm(const roost_kernels *k, const roost_kernels *ref, int is_ref, uint64_t *rng) {
    for (int ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const int32_t t = weight_types[ti];
        const int32_t at = roost_type_traits_get(t)->vec_dot_type;
        if (!k->gemv[t] || !k->gemm[t] || !ref->gemv[t] || !ref->dequantize[t]) continue;
        if (at != ROOST_TYPE_F32 && (!ref->quantize[at] || !ref->dequantize[at])) continue;
        const int bs = roost_type_traits_get(t)->block_size;
        int64_t sizes[8];
        int nsizes = 0;
        if (bs == 1) {
            const int64_t s[] = {1, 7, 33, 256, 1000, 4096};
            for (int i = 0; i < 6; i++) sizes[nsizes++] = s[i];
        } else if (bs == 32) {
            // 480: whole groups of 8 blocks and a tail of 7 (the row-linear Q8_0 gemv);
            // 16416: more blocks than that gemv's per-call tables hold
            const int64_t s[] = {32, 96, 256, 480, 1024, 4096, 16416};
            for (int i = 0; i < 7; i++) sizes[nsizes++] = s[i];
        } else {
            const int64_t s[] = {256, 768, 4096};
            for (int i = 0; i < 3; i++) sizes[nsizes++] = s[i];
        }
        // 37 rows and up to 17 columns reach the repacked gemm tiles (16 / 8 rows, AVX-512: 8+ columns).
        static const int64_t row_counts[] = {1, 3, 4, 5, 13, 37};
        for (int si = 0; si < nsizes; si++) {
            const int64_t n = sizes[si];
            for (int ri = 0; ri < 6; ri++) {
                const int64_t nrows = row_counts[ri];
                if (n >= 4096 && nrows != 5) continue;
                matrix m = make_matrix(t, n, nrows, (nrows & 1) ? 64 : 0, ref, rng);

                // gemm columns; column 0 also drives the gemv checks.
                const int64_t ncols = 17;
                const size_t a_stride = act_row_bytes(at, n) + 32;
                char *a = xmalloc(a_stride * (size_t)ncols);
                memset(a, 0xee, a_stride * (size_t)ncols);
                float *af = xmalloc((size_t)(n * ncols) * sizeof(float));
                for (int64_t c = 0; c < ncols; c++) make_act(at, n, a + (size_t)c * a_stride, af + c * n, ref, rng);

                float *y = xmalloc((size_t)(nrows * ncols) * sizeof(float));
                float *yref = xmalloc((size_t)nrows * sizeof(float));
                float *ysplit = xmalloc((size_t)nrows * sizeof(float));
                for (int64_t c = 0; c < ncols; c++) k->gemv[t](n, nrows, m.w, m.row_bytes, a + (size_t)c * a_stride, y + c * nrows);

                // 1. gemv against ref (SIMD paths) and the ref against the oracle.
                ref->gemv[t](n, nrows, m.w, m.row_bytes, a, yref);
                int ok_ref = 1, ok_oracle = 1;
                double worst = 0.0;
                for (int64_t r = 0; r < nrows; r++) {
                    const double mag = magnitude(m.wf + r * n, af, n) + 1e-30;
                    const double o = oracle_dot(m.wf + r * n, af, n);
                    const double e_ref = fabs((double)y[r] - (double)yref[r]) / mag;
                    const double e_oracle = fabs((double)yref[r] - o) / mag;
                    if (!(e_ref <= 2.0 * accum_tol(t, n))) ok_ref = 0;
                    if (!(e_oracle <= accum_tol(t, n) + format_tol(t))) ok_oracle = 0;
                    worst = fmax(worst, is_ref ? e_oracle : e_ref);
                }
                // Quantized weights: exact integer block sums and the ref's float combine,
                // so every path gives the ref's bits (results do not depend on the path).
                if (!is_ref && !is_float_type(t))
                    check(bits_equal(y, yref, nrows), "gemv %s n=%lld rows=%lld: not bitwise the ref (rel %.3g)",
                          tname(t), (long long)n, (long long)nrows, worst);
                if (!is_ref)
                    check(ok_ref, "gemv %s n=%lld rows=%lld: differs from ref (rel %.3g)", tname(t),
                          (long long)n, (long long)nrows, worst);
                else
                    check(ok_oracle, "gemv %s n=%lld rows=%lld: ref differs from double oracle (rel %.3g)",
                          tname(t), (long long)n, (long long)nrows, worst);

                // 2. Row-split invariance: bitwise.
                int ok_split = 1;
                const int64_t splits[] = {1, nrows / 2, nrows - 1};
                for (int s = 0; s < 3; s++) {
                    const int64_t k0 = splits[s];
                    if (k0 <= 0 || k0 >= nrows) continue;
                    for (int64_t i = 0; i < nrows; i++) ysplit[i] = NAN;
                    k->gemv[t](n, k0, m.w, m.row_bytes, a, ysplit);
                    k->gemv[t](n, nrows - k0, m.w + (size_t)k0 * m.row_bytes, m.row_bytes, a, ysplit + k0);
                    if (!bits_equal(ysplit, y, nrows)) ok_split = 0;
                }
                for (int64_t r = 0; r < nrows; r++) {
                    k->gemv[t](n, 1, m.w + (size_t)r * m.row_bytes, m.row_bytes, a, ysplit + r);
                }
                if (!bits_equal(ysplit, y, nrows)) ok_split = 0;
                check(ok_split, "gemv %s n=%lld rows=%lld: result depends on the row split", tname(t),
                      (long long)n, (long long)nrows);

                // 3. gemm == gemv per column, bitwise, for several column counts; pads untouched.
                static const int64_t col_counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 17};
                for (int ci = 0; ci < 9; ci++) {
                    const int64_t nc = col_counts[ci];
                    const int64_t y_stride = nrows + 3;
                    float *g = xmalloc((size_t)(y_stride * nc) * sizeof(float));
                    const uint32_t sentinel = 0x7fc0deadu;
                    for (int64_t i = 0; i < y_stride * nc; i++) memcpy(&g[i], &sentinel, 4);
                    k->gemm[t](n, nrows, m.w, m.row_bytes, nc, a, a_stride, g, y_stride);
                    int ok = 1, ok_pad = 1;
                    for (int64_t c = 0; c < nc; c++) {
                        if (!bits_equal(g + c * y_stride, y + c * nrows, nrows)) ok = 0;
                        for (int64_t r = nrows; r < y_stride; r++) {
                            uint32_t bits;
                            memcpy(&bits, &g[c * y_stride + r], 4);
                            if (bits != sentinel) ok_pad = 0;
                        }
                    }
                    check(ok, "gemm %s n=%lld rows=%lld cols=%lld: not bitwise gemv", tname(t),
                          (long long)n, (long long)nrows, (long long)nc);
                    check(ok_pad, "gemm %s n=%lld rows=%lld cols=%lld: wrote outside the output", tname(t),
                          (long long)n, (long long)nrows, (long long)nc);
                    free(g);
                }
                free(y);
                free(yref);
                free(ysplit);
                free(a);
                free(af);
                free_matrix(&m);
            }
        }
    }
}

int main(void) {
    test_traits();
    const roost_kernels *ref = roost_kernels_for(ROOST_PATH_REF);
    check(ref != NULL, "ref path available");
    if (!ref) return 1;
    roost_cpu_features f = roost_cpu_features_get();
    printf("ckernels: cpu avx2=%d fma=%d f16c=%d avx512f=%d avx512vnni=%d neon=%d dotprod=%d; best path %s\n",
           !!f.avx2, !!f.fma, !!f.f16c, !!f.avx512f, !!f.avx512vnni, !!f.neon, !!f.dotprod, roost_path_name(roost_path_best()));
    for (int32_t p = 0; p < ROOST_PATH_COUNT; p++) {
        const char *name = roost_path_name(p);
        if (!roost_path_available(p)) {
            printf("ckernels: path %-6s not available on this CPU\n", name);
            continue;
        }
        const roost_kernels *k = roost_kernels_for(p);
        cur_path = name;
        const long before_p = n_passed, before_f = n_failed;
        uint64_t rng = 0x5eed0000u + (uint64_t)p;
        test_table_complete(k);
        test_dequantize(k, ref, &rng);
        test_quantize(k, ref, p == ROOST_PATH_REF, &rng);
        test_gemv_gemm(k, ref, p == ROOST_PATH_REF, &rng);
        roost_test_wkv(k, ref, p == ROOST_PATH_REF, &rng);
        roost_test_attn(k, ref, p == ROOST_PATH_REF, &rng);
        int own = 0;
        for (int i = 0; i < N_WEIGHT_TYPES; i++) own += k->gemv[weight_types[i]] && (p == ROOST_PATH_REF || k->gemv[weight_types[i]] != ref->gemv[weight_types[i]]);
        printf("ckernels: path %-6s %ld passed, %ld failed (%d of %d weight types with own gemv)\n", name,
               n_passed - before_p, n_failed - before_f, own,
               N_WEIGHT_TYPES);
    }
    printf("ckernels: %ld passed, %ld failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
