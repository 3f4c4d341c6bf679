// Transformer kernel tests: RoPE and attention over an F16 KV cache. The ref path against
// double-precision oracles written from the formulas in roost_kernels.h; every other path
// against the ref (RoPE bitwise, attention within float rounding); a query row's result
// independent of the other rows of its call.
#include "internal.h"
#include "test_blocks.h"

#include <stdio.h>
#include <stdlib.h>

static void *xalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static float *rand_floats(int64_t n, float lo, float hi, uint64_t *rng) {
    float *p = xalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * roost_test_rng_unit(rng);
    return p;
}

// ---- RoPE -------------------------------------------------------------------------------

static void rope_oracle(int64_t n_heads, int64_t d, int64_t n_rot, int neox, const float *cs, const float *x,
                        double *y) {
    const int64_t half = n_rot / 2;
    for (int64_t i = 0; i < n_heads * d; i++) y[i] = x[i];
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t i = 0; i < half; i++) {
            const int64_t i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
            const double x0 = x[h * d + i0], x1 = x[h * d + i1], c = cs[i], s = cs[half + i];
            y[h * d + i0] = x0 * c - x1 * s;
            y[h * d + i1] = x0 * s + x1 * c;
        }
}

static void test_rope(const roost_kernels *k, const roost_kernels *ref, int is_ref, uint64_t *rng) {
    static const int64_t shapes[][3] = {{1, 64, 64}, {4, 128, 128}, {3, 64, 32}, {2, 80, 80}, {5, 6, 6}, {2, 16, 10}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int64_t H = shapes[si][0], d = shapes[si][1], n_rot = shapes[si][2], n = H * d;
        float *cs = xalloc((size_t)n_rot * sizeof(float));
        const float pos = 37.0f * roost_test_rng_unit(rng);
        for (int64_t i = 0; i < n_rot / 2; i++) {
            const double theta = pos * pow(10000.0, -2.0 * (double)i / (double)n_rot);
            cs[i] = (float)cos(theta);
            cs[n_rot / 2 + i] = (float)sin(theta);
        }
        float *x = rand_floats(n, -2, 2, rng);
        for (int neox = 0; neox <= 1; neox++) {
            float *y = xalloc((size_t)n * sizeof(float)), *yr = xalloc((size_t)n * sizeof(float));
            double *yd = xalloc((size_t)n * sizeof(double));
            memcpy(y, x, (size_t)n * sizeof(float));
            memcpy(yr, x, (size_t)n * sizeof(float));
            k->rope(H, d, n_rot, neox, cs, y);
            ref->rope(H, d, n_rot, neox, cs, yr);
            if (is_ref) {
                rope_oracle(H, d, n_rot, neox, cs, x, yd);
                double e = 0;
                for (int64_t i = 0; i < n; i++) e = fmax(e, fabs(y[i] - yd[i]));
                roost_test_check(e <= 1e-5, "rope %s H=%lld d=%lld n_rot=%lld: ref vs double oracle %.3g",
                                 neox ? "neox" : "normal", (long long)H, (long long)d, (long long)n_rot, e);
                int untouched = 1;
                for (int64_t h = 0; h < H; h++)
                    for (int64_t i = n_rot; i < d; i++) untouched &= y[h * d + i] == x[h * d + i];
                roost_test_check(untouched, "rope: dims from n_rot on changed");
            } else {
                roost_test_check(memcmp(y, yr, (size_t)n * sizeof(float)) == 0,
                                 "rope %s H=%lld d=%lld n_rot=%lld: differs from ref", neox ? "neox" : "normal",
                                 (long long)H, (long long)d, (long long)n_rot);
            }
            free(y);
            free(yr);
            free(yd);
        }
        free(cs);
        free(x);
    }
}

// ---- attention --------------------------------------------------------------------------

static void attn_oracle(int64_t n_q, int64_t d, int64_t n_kv, const float *q, const uint16_t *k, const uint16_t *v,
                        int64_t kv_stride, float scale, double *out) {
    double *s = xalloc((size_t)n_kv * sizeof(double));
    for (int64_t h = 0; h < n_q; h++) {
        double max = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n_kv; j++) {
            double dot = 0;
            for (int64_t i = 0; i < d; i++) dot += (double)q[h * d + i] * roost_fp16_to_fp32(k[j * kv_stride + i]);
            s[j] = dot * scale;
            max = fmax(max, s[j]);
        }
        for (int64_t j = 0; j < n_kv; j++) {
            s[j] = exp(s[j] - max);
            sum += s[j];
        }
        for (int64_t i = 0; i < d; i++) {
            double o = 0;
            for (int64_t j = 0; j < n_kv; j++) o += s[j] * roost_fp16_to_fp32(v[j * kv_stride + i]);
            out[h * d + i] = o / sum;
        }
    }
    free(s);
}

static void test_attention(const roost_kernels *k, const roost_kernels *ref, int is_ref, uint64_t *rng) {
    // n_q, head_dim, n_kv, KV heads interleaved in the cache row (kv_stride = that * head_dim)
    static const int64_t shapes[][4] = {{1, 64, 1, 1},  {4, 64, 17, 2}, {2, 128, 40, 1}, {7, 64, 300, 4},
                                        {1, 32, 5, 1},  {3, 16, 9, 3},  {2, 24, 33, 1},  {2, 6, 4, 2},
                                        {8, 96, 64, 1}, {1, 8, 1000, 2}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int64_t nq = shapes[si][0], d = shapes[si][1], nkv = shapes[si][2], stride = shapes[si][3] * d;
        const float scale = 1.0f / sqrtf((float)d);
        float *q = rand_floats(nq * d, -3, 3, rng);
        uint16_t *kc = xalloc((size_t)(nkv * stride) * 2), *vc = xalloc((size_t)(nkv * stride) * 2);
        for (int64_t i = 0; i < nkv * stride; i++) {
            kc[i] = roost_fp32_to_fp16(-2 + 4 * roost_test_rng_unit(rng));
            vc[i] = roost_fp32_to_fp16(-2 + 4 * roost_test_rng_unit(rng));
        }
        // KV head 1 of the row when there is one (offset into the row).
        const int64_t off = shapes[si][3] > 1 ? d : 0;
        float *scores = xalloc((size_t)(nq * nkv) * sizeof(float));
        float *out = xalloc((size_t)(nq * d) * sizeof(float)), *outr = xalloc((size_t)(nq * d) * sizeof(float));
        float *out1 = xalloc((size_t)(nq * d) * sizeof(float));
        double *outd = xalloc((size_t)(nq * d) * sizeof(double));
        // The same cache as F32: every path's attn_f32 against the ref's, and against attn_f16
        // on the same (F16-representable) values.
        float *kf = xalloc((size_t)(nkv * stride) * sizeof(float)), *vf = xalloc((size_t)(nkv * stride) * sizeof(float));
        for (int64_t i = 0; i < nkv * stride; i++) {
            kf[i] = roost_fp16_to_fp32(kc[i]);
            vf[i] = roost_fp16_to_fp32(vc[i]);
        }
        float *of = xalloc((size_t)(nq * d) * sizeof(float)), *ofr = xalloc((size_t)(nq * d) * sizeof(float));
        k->attn_f32(nq, d, nkv, q, d, kf + off, vf + off, stride, scale, scores, of, d);
        ref->attn_f32(nq, d, nkv, q, d, kf + off, vf + off, stride, scale, scores, ofr, d);
        {
            double ef = 0, mf = 0;
            for (int64_t i = 0; i < nq * d; i++) {
                ef = fmax(ef, fabs(of[i] - ofr[i]));
                mf = fmax(mf, fabs(ofr[i]));
            }
            roost_test_check(ef <= 2e-6 * (mf + 1), "attn_f32 n_q=%lld d=%lld n_kv=%lld: differs from ref by %.3g",
                             (long long)nq, (long long)d, (long long)nkv, ef);
        }
        k->attn_f16(nq, d, nkv, q, d, kc + off, vc + off, stride, scale, scores, out, d);
        if (!is_ref) {
            double ef = 0, mf = 0;
            for (int64_t i = 0; i < nq * d; i++) {
                ef = fmax(ef, fabs(of[i] - out[i]));
                mf = fmax(mf, fabs(out[i]));
            }
            roost_test_check(ef <= 2e-6 * (mf + 1), "attn_f32 vs attn_f16 on the same values: %.3g", ef);
        }
        // The same cache quantized to Q8_0 (head sizes that are multiples of 32): the ref against
        // attn_f32 on the dequantized values, every path against the ref.
        if (d % QK8_0 == 0 && ref->quantize[ROOST_TYPE_Q8_0] && ref->dequantize[ROOST_TYPE_Q8_0]) {
            const int64_t row_bytes = stride / QK8_0 * (int64_t)sizeof(block_q8_0);
            char *kq = xalloc((size_t)(nkv * row_bytes)), *vq = xalloc((size_t)(nkv * row_bytes));
            float *kd = xalloc((size_t)(nkv * stride) * sizeof(float)), *vd = xalloc((size_t)(nkv * stride) * sizeof(float));
            for (int64_t j = 0; j < nkv; j++) {
                ref->quantize[ROOST_TYPE_Q8_0](kf + j * stride, kq + j * row_bytes, stride);
                ref->quantize[ROOST_TYPE_Q8_0](vf + j * stride, vq + j * row_bytes, stride);
                ref->dequantize[ROOST_TYPE_Q8_0](kq + j * row_bytes, kd + j * stride, stride);
                ref->dequantize[ROOST_TYPE_Q8_0](vq + j * row_bytes, vd + j * stride, stride);
            }
            const int64_t qoff = off / QK8_0 * (int64_t)sizeof(block_q8_0);
            float *o8 = xalloc((size_t)(nq * d) * sizeof(float)), *o8r = xalloc((size_t)(nq * d) * sizeof(float));
            float *odq = xalloc((size_t)(nq * d) * sizeof(float)), *o81 = xalloc((size_t)(nq * d) * sizeof(float));
            k->attn_q8_0(nq, d, nkv, q, d, kq + qoff, vq + qoff, row_bytes, scale, scores, o8, d);
            ref->attn_q8_0(nq, d, nkv, q, d, kq + qoff, vq + qoff, row_bytes, scale, scores, o8r, d);
            ref->attn_f32(nq, d, nkv, q, d, kd + off, vd + off, stride, scale, scores, odq, d);
            for (int64_t h = 0; h < nq; h++)
                k->attn_q8_0(1, d, nkv, q + h * d, d, kq + qoff, vq + qoff, row_bytes, scale, scores, o81 + h * d, d);
            double e8 = 0, m8 = 0, eq = 0;
            for (int64_t i = 0; i < nq * d; i++) {
                e8 = fmax(e8, fabs(o8[i] - o8r[i]));
                eq = fmax(eq, fabs(o8r[i] - odq[i]));
                m8 = fmax(m8, fabs(o8r[i]));
            }
            roost_test_check(e8 <= 2e-6 * (m8 + 1), "attn_q8_0 n_q=%lld d=%lld n_kv=%lld: differs from ref by %.3g",
                             (long long)nq, (long long)d, (long long)nkv, e8);
            roost_test_check(eq <= 2e-6 * (m8 + 1), "attn_q8_0 ref n_q=%lld d=%lld n_kv=%lld: vs attn_f32 on the dequantized cache %.3g",
                             (long long)nq, (long long)d, (long long)nkv, eq);
            roost_test_check(memcmp(o8, o81, (size_t)(nq * d) * sizeof(float)) == 0,
                             "attn_q8_0: a row depends on the other rows of the call");
            free(kq);
            free(vq);
            free(kd);
            free(vd);
            free(o8);
            free(o8r);
            free(odq);
            free(o81);
        }
        free(kf);
        free(vf);
        free(of);
        free(ofr);
        ref->attn_f16(nq, d, nkv, q, d, kc + off, vc + off, stride, scale, scores, outr, d);
        for (int64_t h = 0; h < nq; h++)
            k->attn_f16(1, d, nkv, q + h * d, d, kc + off, vc + off, stride, scale, scores, out1 + h * d, d);
        double e = 0, m = 0;
        if (is_ref) {
            attn_oracle(nq, d, nkv, q, kc + off, vc + off, stride, scale, outd);
            for (int64_t i = 0; i < nq * d; i++) {
                e = fmax(e, fabs(out[i] - outd[i]));
                m = fmax(m, fabs(outd[i]));
            }
            roost_test_check(e <= 2e-6 * (m + 1), "attn n_q=%lld d=%lld n_kv=%lld: ref vs double oracle %.3g",
                             (long long)nq, (long long)d, (long long)nkv, e);
        } else {
            for (int64_t i = 0; i < nq * d; i++) {
                e = fmax(e, fabs(out[i] - outr[i]));
                m = fmax(m, fabs(outr[i]));
            }
            roost_test_check(e <= 2e-6 * (m + 1), "attn n_q=%lld d=%lld n_kv=%lld: differs from ref by %.3g",
                             (long long)nq, (long long)d, (long long)nkv, e);
        }
        roost_test_check(memcmp(out, out1, (size_t)(nq * d) * sizeof(float)) == 0,
                         "attn n_q=%lld d=%lld n_kv=%lld: a row depends on the other rows of the call",
                         (long long)nq, (long long)d, (long long)nkv);
        free(q);
        free(kc);
        free(vc);
        free(scores);
        free(out);
        free(outr);
        free(out1);
        free(outd);
    }
}

void roost_test_attn(const roost_kernels *k, const roost_kernels *ref, int is_ref, uint64_t *rng) {
    roost_test_check(k->rope != NULL && k->attn_f16 != NULL && k->attn_f32 != NULL && k->attn_q8_0 != NULL,
                     "transformer kernels missing");
    if (!k->rope || !k->attn_f16 || !k->attn_f32 || !k->attn_q8_0 || !ref->rope || !ref->attn_f16 || !ref->attn_f32 ||
        !ref->attn_q8_0)
        return;
    test_rope(k, ref, is_ref, rng);
    test_attention(k, ref, is_ref, rng);
}
