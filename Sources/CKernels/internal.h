// Internal to CKernels: ggml's block layouts and the per-file registration hooks.
#pragma once

#include "roost_kernels.h"

#include <assert.h>
#include <math.h>
#include <string.h>

typedef uint16_t roost_half; // IEEE binary16 bits

// ---- legacy formats: blocks of 32 -------------------------------------------------
#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32

typedef struct { roost_half d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct { roost_half d; roost_half m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
typedef struct { roost_half d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
typedef struct { roost_half d; roost_half m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
typedef struct { roost_half d; int8_t qs[QK8_0]; } block_q8_0;
// Q8_1 activations: s = d * sum(qs)
typedef struct { roost_half d; roost_half s; int8_t qs[QK8_1]; } block_q8_1;

static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");
static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");
static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");
static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");
static_assert(sizeof(block_q8_1) == 36, "block_q8_1 size");

// ---- K-quants: super-blocks of 256 ------------------------------------------------
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; roost_half d; roost_half dmin; } block_q2_K;
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; roost_half d; } block_q3_K;
typedef struct { roost_half d; roost_half dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { roost_half d; roost_half dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; roost_half d; } block_q6_K;
// Q8_K activations: bsums[i] = sum of qs[16 i .. 16 i + 15]
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;

static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");
static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");
static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");
static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");
static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");
static_assert(sizeof(block_q8_K) == 292, "block_q8_K size");

// ---- registration ----------------------------------------------------------------
// Each kernel file fills the entries it implements; dispatch.c calls them once, in
// this order, and fills what is left NULL in a SIMD table from the ref table.
void roost_register_ref_float(roost_kernels *k);
void roost_register_ref_legacy(roost_kernels *k);
void roost_register_ref_kquants(roost_kernels *k);
void roost_register_avx2_legacy(roost_kernels *k);   // also F32/F16/BF16
void roost_register_avx2_kquants(roost_kernels *k);
void roost_register_avx512_legacy(roost_kernels *k); // also F32/F16/BF16
void roost_register_avx512_kquants(roost_kernels *k);
void roost_register_neon_legacy(roost_kernels *k);   // also F32/F16/BF16
void roost_register_neon_kquants(roost_kernels *k);
void roost_register_ref_wkv(roost_kernels *k);

// The ref WKV step of one head and one token (ref_wkv.c); the SIMD paths use it for
// head sizes their vectors do not divide.
void roost_wkv6_ref_head(int64_t N, const float *rt, const float *kt, const float *vt, const float *wt,
                         const float *u, float *S, float *ot);
void roost_wkv7_ref_head(int64_t N, const float *rt, const float *wt, const float *kt, const float *vt,
                         const float *at, const float *bt, float *S, float *ot);
void roost_register_avx2_wkv(roost_kernels *k);
void roost_register_avx512_wkv(roost_kernels *k);
void roost_register_neon_wkv(roost_kernels *k);

// AVX2 K-quant gemm with 1-row tiles (each weight row decoded once per group of up to
// 4 columns), used by the AVX-512 table for few columns; x86-64 only.
void roost_kq_gemm_small_avx2(int type, int64_t n, int64_t nrows, const void *w, size_t row_bytes,
                              int64_t ncols, const void *a, size_t a_stride, float *y, int64_t y_stride);

void roost_register_ref_attn(roost_kernels *k);
// The ref attention (ref_attn.c); the SIMD paths use it for head sizes their vectors do
// not divide.
void roost_attn_f16_ref(int64_t n_q, int64_t head_dim, int64_t n_kv, const float *q, int64_t q_stride,
                        const uint16_t *k, const uint16_t *v, int64_t kv_stride, float scale, float *scores,
                        float *out, int64_t out_stride);
void roost_attn_f32_ref(int64_t n_q, int64_t head_dim, int64_t n_kv, const float *q, int64_t q_stride,
                        const float *k, const float *v, int64_t kv_stride, float scale, float *scores,
                        float *out, int64_t out_stride);
void roost_register_avx2_attn(roost_kernels *k);
void roost_register_avx2_attn_q8(roost_kernels *k);
void roost_register_neon_attn_q8(roost_kernels *k);
void roost_attn_q8_0_ref(int64_t n_q, int64_t head_dim, int64_t n_kv, const float *q, int64_t q_stride,
                         const void *k, const void *v, int64_t kv_stride, float scale, float *scores, float *out,
                         int64_t out_stride);
void roost_register_neon_attn(roost_kernels *k);

// Detected once by dispatch.c.
extern roost_cpu_features roost_cpu;

// A generic gemm built on a gemv, column by column: satisfies the batch-invariance
// contract trivially. Paths use it until they have a tiled gemm of their own.
void roost_gemm_by_gemv(roost_gemv_fn gemv, int64_t n, int64_t nrows, const void *w,
                        size_t row_bytes, int64_t ncols, const void *a, size_t a_stride,
                        float *y, int64_t y_stride);

// Mamba kernels (ssm files): fills ssm_conv and ssm_scan of every available path's table,
// a path without its own taking the next slower one's.
void roost_register_ssm(roost_kernels *tables, const int *available);
