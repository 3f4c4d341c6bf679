// Random valid blocks of the float and legacy quant types.
#include "internal.h"
#include "test_blocks.h"

// Default until the K-quant test blocks are linked in.
__attribute__((weak)) int roost_test_random_block_kquants(int32_t type, void *block, uint64_t *rng) {
    (void)type;
    (void)block;
    (void)rng;
    return 0;
}

static roost_half rand_half(uint64_t *rng, int lo_exp, int hi_exp) {
    return roost_fp32_to_fp16(roost_test_rng_scale(rng, lo_exp, hi_exp, 1));
}

int roost_test_random_block_legacy(int32_t type, void *block, uint64_t *rng) {
    switch (type) {
    case ROOST_TYPE_F32: {
        const float v = roost_test_rng_sym(rng) * 2.0f;
        memcpy(block, &v, sizeof v);
        return 1;
    }
    case ROOST_TYPE_F16: {
        const roost_half h = roost_fp32_to_fp16(roost_test_rng_sym(rng) * 2.0f);
        memcpy(block, &h, sizeof h);
        return 1;
    }
    case ROOST_TYPE_BF16: {
        const uint16_t h = roost_fp32_to_bf16(roost_test_rng_sym(rng) * 2.0f);
        memcpy(block, &h, sizeof h);
        return 1;
    }
    case ROOST_TYPE_Q4_0: {
        block_q4_0 *b = block;
        roost_test_rng_fill(rng, b->qs, sizeof b->qs);
        b->d = rand_half(rng, -10, -2);
        return 1;
    }
    case ROOST_TYPE_Q4_1: {
        block_q4_1 *b = block;
        roost_test_rng_fill(rng, b->qs, sizeof b->qs);
        b->d = rand_half(rng, -10, -2);
        b->m = rand_half(rng, -8, 0);
        return 1;
    }
    case ROOST_TYPE_Q5_0: {
        block_q5_0 *b = block;
        roost_test_rng_fill(rng, b->qh, sizeof b->qh);
        roost_test_rng_fill(rng, b->qs, sizeof b->qs);
        b->d = rand_half(rng, -10, -2);
        return 1;
    }
    case ROOST_TYPE_Q5_1: {
        block_q5_1 *b = block;
        roost_test_rng_fill(rng, b->qh, sizeof b->qh);
        roost_test_rng_fill(rng, b->qs, sizeof b->qs);
        b->d = rand_half(rng, -10, -2);
        b->m = rand_half(rng, -8, 0);
        return 1;
    }
    case ROOST_TYPE_Q8_0: {
        block_q8_0 *b = block;
        roost_test_rng_fill(rng, b->qs, sizeof b->qs);
        for (int j = 0; j < QK8_0; j++)
            if (b->qs[j] == -128) b->qs[j] = -127; // the quantizer never makes -128
        b->d = rand_half(rng, -12, -4);
        return 1;
    }
    case ROOST_TYPE_Q8_1: {
        block_q8_1 *b = block;
        roost_test_rng_fill(rng, b->qs, sizeof b->qs);
        for (int j = 0; j < QK8_1; j++)
            if (b->qs[j] == -128) b->qs[j] = -127; // the quantizer never makes -128
        const float d = roost_test_rng_scale(rng, -12, -4, 0);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) sum += b->qs[j];
        b->d = roost_fp32_to_fp16(d);
        b->s = roost_fp32_to_fp16((float)sum * d);
        return 1;
    }
    default:
        return 0;
    }
}
