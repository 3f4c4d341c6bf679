// Roost compute kernels: ggml-compatible block formats, activation quantization,
// and matrix-vector / matrix-matrix products of quantized weights with quantized
// activations. Every kernel has a portable reference version (path "ref") that is the
// test oracle of the SIMD versions (paths "avx2", "avx512", "neon").
//
// Nothing here allocates, prints, or knows about models.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Tensor element types, numbered as ggml numbers them (and as GGUF files store them).
// Only the types Roost computes with are listed.
typedef enum roost_type {
    ROOST_TYPE_F32 = 0,
    ROOST_TYPE_F16 = 1,
    ROOST_TYPE_Q4_0 = 2,
    ROOST_TYPE_Q4_1 = 3,
    ROOST_TYPE_Q5_0 = 6,
    ROOST_TYPE_Q5_1 = 7,
    ROOST_TYPE_Q8_0 = 8,
    ROOST_TYPE_Q8_1 = 9,
    ROOST_TYPE_Q2_K = 10,
    ROOST_TYPE_Q3_K = 11,
    ROOST_TYPE_Q4_K = 12,
    ROOST_TYPE_Q5_K = 13,
    ROOST_TYPE_Q6_K = 14,
    ROOST_TYPE_Q8_K = 15,
    ROOST_TYPE_BF16 = 30,
    ROOST_TYPE_COUNT = 40, // size of per-type tables; not a type
} roost_type;

typedef struct roost_type_traits {
    const char *name;      // ggml's name: "f32", "q4_0", "q4_K", ...
    int32_t block_size;    // elements per block (1 for float types)
    int32_t type_size;     // bytes per block
    int32_t vec_dot_type;  // the activation format a weight row of this type is multiplied with:
                           // ROOST_TYPE_F32 for float weights, Q8_0 / Q8_1 for the legacy
                           // quants, Q8_K for the K-quants; -1 for activation-only formats
} roost_type_traits;

// Traits of a type, or NULL when Roost does not know the type.
const roost_type_traits *roost_type_traits_get(int32_t type);

// ---- kernel signatures ------------------------------------------------------------

// Quantize n floats (n a multiple of the format's block size) into activation blocks.
typedef void (*roost_quantize_fn)(const float *x, void *y, int64_t n);

// Dequantize n elements (a multiple of the block size) into floats.
typedef void (*roost_dequantize_fn)(const void *x, float *y, int64_t n);

// Matrix-vector product.
// w: nrows rows of n elements each (n a multiple of the block size), row r starts at
//    (const char *)w + r * row_bytes.
// a: one activation row of n elements in the weight type's vec_dot_type format, as this
//    library's quantizers make it (their int8 values are in [-127, 127], never -128;
//    some SIMD paths rely on that).
// y: [nrows] -> y[r] = dot(w row r, a)
// Contract: y[r] is bitwise the same whatever nrows is and whichever row the call starts
// at (a row's result does not depend on how rows are split across calls or threads).
typedef void (*roost_gemv_fn)(int64_t n, int64_t nrows, const void *w, size_t row_bytes,
                              const void *a, float *y);

// Matrix-matrix product: ncols activation rows at once.
// a: ncols activation rows, row c at (const char *)a + c * a_stride (bytes).
// y: y[c * y_stride + r] = dot(w row r, activation row c), for r < nrows, c < ncols.
// Contract (batch invariance): every y[c * y_stride + r] is bitwise equal to what gemv
// returns for row r and activation row c on the same path.
typedef void (*roost_gemm_fn)(int64_t n, int64_t nrows, const void *w, size_t row_bytes,
                              int64_t ncols, const void *a, size_t a_stride, float *y,
                              int64_t y_stride);

// Mamba-1 (selective state space) kernels, over T tokens of one sequence for the n
// channels of one call (a caller splits the d_inner channels over threads by offsetting
// every per-channel pointer; rows keep their full strides). Tokens are processed in
// order; T tokens in one call are bitwise T single-token calls, and a channel's result
// does not depend on which other channels share the call.
//
// Causal depthwise conv1d step with SiLU, kernel width K (1 <= K <= 8):
//   x:     token t's inputs at x + t * x_stride (n floats)
//   w:     [K][ld] taps, tap k of channel c at w[k * ld + c]; tap K - 1 meets the current
//          token (llama.cpp's ssm_conv1d, [d_inner][K], transposed)
//   b:     [n] bias
//   state: [K - 1][ld] the channel's previous K - 1 inputs, oldest first, updated in place
//   y:     token t's outputs at y + t * y_stride:
//          y[c] = silu(b[c] + sum_k<K-1 w[k][c] * state[k][c] + w[K-1][c] * x[c])
typedef void (*roost_ssm_conv_fn)(int64_t T, int64_t n, int64_t K, int64_t ld, const float *x,
                                  int64_t x_stride, const float *w, const float *b, float *state,
                                  float *y, int64_t y_stride);

// Selective scan step with the D skip and the SiLU(z) gate, state size N:
//   x:       token t's conv outputs at x + t * x_stride (n floats)
//   dt:      token t's time steps before bias and softplus at dt + t * dt_stride
//   dt_bias: [n]; A: [n][N] (-exp(A_log), as llama.cpp stores ssm_a); D: [n]
//   B, C:    token t's N floats at B + t * bc_stride, C + t * bc_stride (shared by all
//            channels)
//   z:       token t's gate at z + t * z_stride
//   state:   [n][N], updated in place
//   y:       token t's outputs at y + t * y_stride
// per channel c and token t:
//   d = softplus(dt[c] + dt_bias[c]) (d = v above 20)
//   state[c][i] = state[c][i] * exp(d * A[c][i]) + d * x[c] * B[i]
//   y[c] = (sum_i state[c][i] * C[i] + D[c] * x[c]) * silu(z[c])
typedef void (*roost_ssm_scan_fn)(int64_t T, int64_t n, int64_t N, const float *x, int64_t x_stride,
                                  const float *dt, int64_t dt_stride, const float *dt_bias,
                                  const float *A, const float *B, const float *C, int64_t bc_stride,
                                  const float *D, const float *z, int64_t z_stride, float *state,
                                  float *y, int64_t y_stride);

// RWKV recurrences (the "WKV" state update), over T tokens for H heads of N channels,
// C = H * N. Per-token inputs are rows of C floats, token t at ptr + t * C; `state` holds
// H matrices of N x N floats (head h at state + h * N * N, row-major), updated in place;
// `out` gets T rows of C floats. Tokens are processed in order (the result is exactly
// that of T single-token calls).
//
// RWKV-5/6: state S[i][j], i over key channels, j over value channels; per head and token
//   out[j] = sum_i r[i] * (u[i] * k[i] * v[j] + S[i][j])
//   S[i][j] = w[i] * S[i][j] + k[i] * v[j]
// w is the decay as a factor in (0, 1) (already exp(-exp(.))); w_stride is the distance in
// floats between two tokens' w rows (C for RWKV-6, 0 for RWKV-5's constant decay); u is
// one row of C floats (the bonus), the same for every token.
typedef void (*roost_wkv6_fn)(int64_t T, int64_t H, int64_t N, const float *r, const float *k,
                              const float *v, const float *w, int64_t w_stride, const float *u,
                              float *state, float *out);

// RWKV-7: state S[i][j], i over value channels, j over key channels; per head and token
//   sa[i] = sum_j S[i][j] * a[j]
//   S[i][j] = S[i][j] * w[j] + sa[i] * b[j] + v[i] * k[j]
//   out[i] = sum_j S[i][j] * r[j]
// (in the model a = -kk and b = kk * iclr; w is the decay factor in (0, 1)).
typedef void (*roost_wkv7_fn)(int64_t T, int64_t H, int64_t N, const float *r, const float *w,
                              const float *k, const float *v, const float *a, const float *b,
                              float *state, float *out);

// RoPE of one token, in place: x holds n_heads vectors of head_dim floats (head h at
// x + h * head_dim); the first n_rot (even, <= head_dim) dims of each head are rotated
// pairwise, pair i < n_rot / 2 by the angle whose cosine is cs[i] and sine cs[n_rot / 2 + i]
// (cs: [2][n_rot / 2], any attention scaling already folded in):
//   x0' = x0 * cos - x1 * sin,  x1' = x0 * sin + x1 * cos
// neox = 0 ("normal", llama.cpp's LLAMA_ROPE_TYPE_NORM): pair i is (x[2i], x[2i + 1]);
// neox = 1 (LLAMA_ROPE_TYPE_NEOX): pair i is (x[i], x[i + n_rot / 2]). Dims from n_rot on
// are left as they are. Every product and sum is rounded separately (no fused
// multiply-add), so every path gives the ref's bits.
typedef void (*roost_rope_fn)(int64_t n_heads, int64_t head_dim, int64_t n_rot, int32_t neox,
                              const float *cs, float *x);

// Attention of n_q query heads that share one KV head (grouped-query attention), for one
// query position, over the first n_kv positions of an F16 KV cache (causal attention:
// the caller passes n_kv = the query's position + 1).
// q:      n_q rows of head_dim floats, row h at q + h * q_stride
// k, v:   position j's head_dim F16 values at k + j * kv_stride, v + j * kv_stride
// scores: scratch of n_q * n_kv floats
// out:    n_q rows of head_dim floats, row h at out + h * out_stride
// For each h: s_j = scale * dot(q_h, k_j); p_j = exp(s_j - max_j s_j);
//   out_h = (sum_j p_j v_j) / (sum_j p_j), sums over j in ascending order.
// Contract: row h's result depends only on q_h, k, v, n_kv and scale (not on n_q or the
// other rows), so a query's result is the same whatever it is computed with.
typedef void (*roost_attn_f16_fn)(int64_t n_q, int64_t head_dim, int64_t n_kv, const float *q,
                                  int64_t q_stride, const uint16_t *k, const uint16_t *v,
                                  int64_t kv_stride, float scale, float *scores, float *out,
                                  int64_t out_stride);

// The same over an F32 KV cache (k, v: float, position j's values at k + j * kv_stride).
typedef void (*roost_attn_f32_fn)(int64_t n_q, int64_t head_dim, int64_t n_kv, const float *q,
                                  int64_t q_stride, const float *k, const float *v, int64_t kv_stride,
                                  float scale, float *scores, float *out, int64_t out_stride);

// The same over a Q8_0 KV cache: each cached head vector is head_dim / 32 ggml block_q8_0
// (an F16 scale d and 32 int8 values; head_dim a multiple of 32), position j's at
// (const char *)k + j * kv_stride (bytes). Keys and values are d * q.
typedef void (*roost_attn_q8_0_fn)(int64_t n_q, int64_t head_dim, int64_t n_kv, const float *q,
                                   int64_t q_stride, const void *k, const void *v, int64_t kv_stride,
                                   float scale, float *scores, float *out, int64_t out_stride);

// One kernel path's table. A NULL entry means "not available for this type"; the
// tables returned by roost_kernels_for() are complete: entries a SIMD path does not
// implement are filled with the ref path's function (compare the pointer with the ref
// table's to tell them apart).
typedef struct roost_kernels {
    const char *name; // "ref", "avx2", "avx512", "neon"
    roost_quantize_fn quantize[ROOST_TYPE_COUNT];     // activation formats: Q8_0, Q8_1, Q8_K
    roost_dequantize_fn dequantize[ROOST_TYPE_COUNT]; // every weight type and activation format
    roost_gemv_fn gemv[ROOST_TYPE_COUNT];             // indexed by the weight type
    roost_gemm_fn gemm[ROOST_TYPE_COUNT];             // indexed by the weight type
    roost_ssm_conv_fn ssm_conv;                       // Mamba: conv1d step + SiLU
    roost_ssm_scan_fn ssm_scan;                       // Mamba: selective scan step
    roost_wkv6_fn wkv6;                               // RWKV-5 and RWKV-6
    roost_wkv7_fn wkv7;                               // RWKV-7
    roost_rope_fn rope;                               // transformers: rotary embedding
    roost_attn_f16_fn attn_f16;                       // transformers: attention over an F16 KV cache
    roost_attn_f32_fn attn_f32;                       // transformers: attention over an F32 KV cache
    roost_attn_q8_0_fn attn_q8_0;                     // transformers: attention over a Q8_0 KV cache
} roost_kernels;

typedef enum roost_path {
    ROOST_PATH_REF = 0,
    ROOST_PATH_AVX2 = 1,   // x86-64 AVX2 + FMA + F16C
    ROOST_PATH_AVX512 = 2, // x86-64 AVX-512 F/BW/VL + VNNI
    ROOST_PATH_NEON = 3,   // AArch64 NEON (dotprod used where the CPU has it)
    ROOST_PATH_COUNT = 4,
} roost_path;

// Name of a path ("ref", "avx2", "avx512", "neon"), or NULL for an invalid value.
const char *roost_path_name(int32_t path);

// 1 when the path is compiled into this binary and the running CPU supports it.
int roost_path_available(int32_t path);

// The complete kernel table of a path, or NULL when the path is not available.
const roost_kernels *roost_kernels_for(int32_t path);

// The fastest available path on this CPU.
int32_t roost_path_best(void);

// CPU feature flags, as detected at start-up (for reporting).
typedef struct roost_cpu_features {
    int avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16;
    int neon, dotprod, i8mm;
} roost_cpu_features;
roost_cpu_features roost_cpu_features_get(void);

// ---- scalar helpers -----------------------------------------------------------------
float roost_fp16_to_fp32(uint16_t h);
uint16_t roost_fp32_to_fp16(float f); // round to nearest even, as ggml
float roost_bf16_to_fp32(uint16_t h);
uint16_t roost_fp32_to_bf16(float f); // round to nearest even, NaN kept quiet, as ggml

#ifdef __cplusplus
}
#endif
