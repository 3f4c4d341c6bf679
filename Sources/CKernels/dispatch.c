#include "internal.h"

#include <pthread.h>
#include <stdlib.h>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
#endif

roost_cpu_features roost_cpu;

static roost_kernels tables[ROOST_PATH_COUNT];
static int available[ROOST_PATH_COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const char *const path_names[ROOST_PATH_COUNT] = {"ref", "avx2", "avx512", "neon"};

static void detect_cpu(void) {
    memset(&roost_cpu, 0, sizeof roost_cpu);
#if defined(__x86_64__)
    __builtin_cpu_init();
    roost_cpu.avx2 = __builtin_cpu_supports("avx2");
    roost_cpu.fma = __builtin_cpu_supports("fma");
    roost_cpu.f16c = __builtin_cpu_supports("f16c");
    roost_cpu.avx512f = __builtin_cpu_supports("avx512f");
    roost_cpu.avx512bw = __builtin_cpu_supports("avx512bw");
    roost_cpu.avx512vl = __builtin_cpu_supports("avx512vl");
    roost_cpu.avx512vnni = __builtin_cpu_supports("avx512vnni");
    roost_cpu.avx512bf16 = __builtin_cpu_supports("avx512bf16");
#elif defined(__aarch64__)
    roost_cpu.neon = 1; // mandatory on AArch64
#if defined(__linux__)
    const unsigned long hw = getauxval(AT_HWCAP);
    const unsigned long hw2 = getauxval(AT_HWCAP2);
    roost_cpu.dotprod = (hw & HWCAP_ASIMDDP) != 0;
    roost_cpu.i8mm = (hw2 & HWCAP2_I8MM) != 0;
#endif
#endif
}

static void fill_from_ref(roost_kernels *k) {
    const roost_kernels *r = &tables[ROOST_PATH_REF];
    for (int t = 0; t < ROOST_TYPE_COUNT; t++) {
        if (!k->quantize[t]) k->quantize[t] = r->quantize[t];
        if (!k->dequantize[t]) k->dequantize[t] = r->dequantize[t];
        if (!k->gemv[t]) k->gemv[t] = r->gemv[t];
        if (!k->gemm[t]) k->gemm[t] = r->gemm[t];
    }
    if (!k->wkv6) k->wkv6 = r->wkv6;
    if (!k->wkv7) k->wkv7 = r->wkv7;
    if (!k->rope) k->rope = r->rope;
    if (!k->attn_f16) k->attn_f16 = r->attn_f16;
    if (!k->attn_f32) k->attn_f32 = r->attn_f32;
    if (!k->attn_q8_0) k->attn_q8_0 = r->attn_q8_0;
}

static void init_tables(void) {
    detect_cpu();
    for (int p = 0; p < ROOST_PATH_COUNT; p++) {
        memset(&tables[p], 0, sizeof tables[p]);
        tables[p].name = path_names[p];
    }
    roost_register_ref_float(&tables[ROOST_PATH_REF]);
    roost_register_ref_legacy(&tables[ROOST_PATH_REF]);
    roost_register_ref_kquants(&tables[ROOST_PATH_REF]);
    roost_register_ref_wkv(&tables[ROOST_PATH_REF]);
    roost_register_ref_attn(&tables[ROOST_PATH_REF]);
    available[ROOST_PATH_REF] = 1;
#if defined(__x86_64__)
    if (roost_cpu.avx2 && roost_cpu.fma && roost_cpu.f16c) {
        roost_register_avx2_legacy(&tables[ROOST_PATH_AVX2]);
        roost_register_avx2_kquants(&tables[ROOST_PATH_AVX2]);
        roost_register_avx2_wkv(&tables[ROOST_PATH_AVX2]);
        roost_register_avx2_attn(&tables[ROOST_PATH_AVX2]);
        roost_register_avx2_attn_q8(&tables[ROOST_PATH_AVX2]);
        fill_from_ref(&tables[ROOST_PATH_AVX2]);
        available[ROOST_PATH_AVX2] = 1;
    }
    if (available[ROOST_PATH_AVX2] && roost_cpu.avx512f && roost_cpu.avx512bw &&
        roost_cpu.avx512vl && roost_cpu.avx512vnni) {
        roost_register_avx512_legacy(&tables[ROOST_PATH_AVX512]);
        roost_register_avx512_kquants(&tables[ROOST_PATH_AVX512]);
        roost_register_avx512_wkv(&tables[ROOST_PATH_AVX512]);
        // What AVX-512 does not implement, AVX2 does better than ref.
        for (int t = 0; t < ROOST_TYPE_COUNT; t++) {
            roost_kernels *k = &tables[ROOST_PATH_AVX512];
            const roost_kernels *a = &tables[ROOST_PATH_AVX2];
            if (!k->quantize[t]) k->quantize[t] = a->quantize[t];
            if (!k->dequantize[t]) k->dequantize[t] = a->dequantize[t];
            if (!k->gemv[t]) k->gemv[t] = a->gemv[t];
            if (!k->gemm[t]) k->gemm[t] = a->gemm[t];
        }
        if (!tables[ROOST_PATH_AVX512].wkv6) tables[ROOST_PATH_AVX512].wkv6 = tables[ROOST_PATH_AVX2].wkv6;
        if (!tables[ROOST_PATH_AVX512].wkv7) tables[ROOST_PATH_AVX512].wkv7 = tables[ROOST_PATH_AVX2].wkv7;
        if (!tables[ROOST_PATH_AVX512].rope) tables[ROOST_PATH_AVX512].rope = tables[ROOST_PATH_AVX2].rope;
        if (!tables[ROOST_PATH_AVX512].attn_f16) tables[ROOST_PATH_AVX512].attn_f16 = tables[ROOST_PATH_AVX2].attn_f16;
        if (!tables[ROOST_PATH_AVX512].attn_f32) tables[ROOST_PATH_AVX512].attn_f32 = tables[ROOST_PATH_AVX2].attn_f32;
        if (!tables[ROOST_PATH_AVX512].attn_q8_0) tables[ROOST_PATH_AVX512].attn_q8_0 = tables[ROOST_PATH_AVX2].attn_q8_0;
        available[ROOST_PATH_AVX512] = 1;
    }
#elif defined(__aarch64__)
    roost_register_neon_legacy(&tables[ROOST_PATH_NEON]);
    roost_register_neon_kquants(&tables[ROOST_PATH_NEON]);
    roost_register_neon_wkv(&tables[ROOST_PATH_NEON]);
    roost_register_neon_attn(&tables[ROOST_PATH_NEON]);
    roost_register_neon_attn_q8(&tables[ROOST_PATH_NEON]);
    fill_from_ref(&tables[ROOST_PATH_NEON]);
    available[ROOST_PATH_NEON] = 1;
#endif
    // Mamba: ssm_conv and ssm_scan of every available path.
    roost_register_ssm(tables, available);
}

static void ensure_init(void) { pthread_once(&once, init_tables); }

const char *roost_path_name(int32_t path) {
    if (path < 0 || path >= ROOST_PATH_COUNT) return NULL;
    return path_names[path];
}

int roost_path_available(int32_t path) {
    ensure_init();
    if (path < 0 || path >= ROOST_PATH_COUNT) return 0;
    return available[path];
}

const roost_kernels *roost_kernels_for(int32_t path) {
    ensure_init();
    if (path < 0 || path >= ROOST_PATH_COUNT || !available[path]) return NULL;
    return &tables[path];
}

int32_t roost_path_best(void) {
    ensure_init();
    if (available[ROOST_PATH_AVX512]) return ROOST_PATH_AVX512;
    if (available[ROOST_PATH_AVX2]) return ROOST_PATH_AVX2;
    if (available[ROOST_PATH_NEON]) return ROOST_PATH_NEON;
    return ROOST_PATH_REF;
}

roost_cpu_features roost_cpu_features_get(void) {
    ensure_init();
    return roost_cpu;
}

void roost_gemm_by_gemv(roost_gemv_fn gemv, int64_t n, int64_t nrows, const void *w,
                        size_t row_bytes, int64_t ncols, const void *a, size_t a_stride,
                        float *y, int64_t y_stride) {
    for (int64_t c = 0; c < ncols; c++) {
        gemv(n, nrows, w, row_bytes, (const char *)a + (size_t)c * a_stride, y + c * y_stride);
    }
}
