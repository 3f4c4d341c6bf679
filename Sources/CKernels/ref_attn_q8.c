// Reference attention over a Q8_0 KV cache (see roost_kernels.h): each cached head vector
// is head_dim / 32 blocks of block_q8_0 (scale d, 32 int8 values). Plain float32 loops
// in index order.
#include "internal.h"

// One query row: q [head_dim] against n_kv cached positions -> out [head_dim].
static void attn_q8_0_row_ref(int64_t head_dim, int64_t n_kv, const float *q, const char *k, const char *v,
                              int64_t kv_stride, float scale, float *s, float *out) {
    const int64_t nb = head_dim / QK8_0;
    float max = -INFINITY;
    for (int64_t j = 0; j < n_kv; j++) {
        const block_q8_0 *kb = (const block_q8_0 *)(k + j * kv_stride);
        float dot = 0.0f;
        for (int64_t b = 0; b < nb; b++) {
            float part = 0.0f;
            for (int i = 0; i < QK8_0; i++) part += q[b * QK8_0 + i] * (float)kb[b].qs[i];
            dot += roost_fp16_to_fp32(kb[b].d) * part;
        }
        s[j] = dot * scale;
        if (s[j] > max) max = s[j];
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < n_kv; j++) {
        s[j] = expf(s[j] - max);
        sum += s[j];
    }
    for (int64_t i = 0; i < head_dim; i++) out[i] = 0.0f;
    for (int64_t j = 0; j < n_kv; j++) {
        const block_q8_0 *vb = (const block_q8_0 *)(v + j * kv_stride);
        for (int64_t b = 0; b < nb; b++) {
            const float pd = s[j] * roost_fp16_to_fp32(vb[b].d);
            for (int i = 0; i < QK8_0; i++) out[b * QK8_0 + i] += pd * (float)vb[b].qs[i];
        }
    }
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < head_dim; i++) out[i] *= inv;
}

void roost_attn_q8_0_ref(int64_t n_q, int64_t head_dim, int64_t n_kv, const float *q, int64_t q_stride,
                         const void *k, const void *v, int64_t kv_stride, float scale, float *scores, float *out,
                         int64_t out_stride) {
    for (int64_t h = 0; h < n_q; h++)
        attn_q8_0_row_ref(head_dim, n_kv, q + h * q_stride, k, v, kv_stride, scale, scores + h * n_kv,
                          out + h * out_stride);
}
