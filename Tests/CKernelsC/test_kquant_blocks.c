// Random valid blocks of the K-quant types (super-blocks of QK_K = 256).
// Replaces the weak default of roost_test_random_block_kquants in test_legacy_blocks.c.
#include "internal.h"
#include "test_blocks.h"

static roost_half rand_half_pos(uint64_t *rng, int lo_exp, int hi_exp) {
    return roost_fp32_to_fp16(roost_test_rng_scale(rng, lo_exp, hi_exp, 0));
}

static roost_half rand_half(uint64_t *rng, int lo_exp, int hi_exp) {
    return roost_fp32_to_fp16(roost_test_rng_scale(rng, lo_exp, hi_exp, 1));
}

int roost_test_random_block_kquants(int32_t type, void *block, uint64_t *rng) {
    switch (type) {
    case ROOST_TYPE_Q2_K: {
        block_q2_K *b = block;
        roost_test_rng_fill(rng, b->scales, sizeof b->scales); // 4-bit scale | 4-bit min
        roost_test_rng_fill(rng, b->qs, sizeof b->qs);
        b->d = rand_half_pos(rng, -12, -4);
        b->dmin = rand_half_pos(rng, -12, -4);
        return 1;
    }
    case ROOST_TYPE_Q3_K: {
        block_q3_K *b = block;
        roost_test_rng_fill(rng, b->hmask, sizeof b->hmask);
        roost_test_rng_fill(rng, b->qs, sizeof b->qs);
        roost_test_rng_fill(rng, b->scales, sizeof b->scales); // every bit pattern is valid
        b->d = rand_half(rng, -12, -4);
        return 1;
    }
    case ROOST_TYPE_Q4_K: {
        block_q4_K *b = block;
        roost_test_rng_fill(rng, b->scales, sizeof b->scales); // every bit pattern is valid
        roost_test_rng_fill(rng, b->qs, sizeof b->qs);
        b->d = rand_half_pos(rng, -12, -4);
        b->dmin = rand_half_pos(rng, -12, -4);
        return 1;
    }
    case ROOST_TYPE_Q5_K: {
        block_q5_K *b = block;
        roost_test_rng_fill(rng, b->scales, sizeof b->scales);
        roost_test_rng_fill(rng, b->qh, sizeof b->qh);
        roost_test_rng_fill(rng, b->qs, sizeof b->qs);
        b->d = rand_half_pos(rng, -12, -4);
        b->dmin = rand_half_pos(rng, -12, -4);
        return 1;
    }
    case ROOST_TYPE_Q6_K: {
        block_q6_K *b = block;
        roost_test_rng_fill(rng, b->ql, sizeof b->ql);
        roost_test_rng_fill(rng, b->qh, sizeof b->qh);
        roost_test_rng_fill(rng, b->scales, sizeof b->scales); // int8 scales, any value
        b->d = rand_half(rng, -12, -4);
        return 1;
    }
    case ROOST_TYPE_Q8_K: {
        block_q8_K *b = block;
        roost_test_rng_fill(rng, b->qs, sizeof b->qs);
        for (int j = 0; j < QK_K; j++)
            if (b->qs[j] == -128) b->qs[j] = -127; // the quantizer never makes -128
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += b->qs[16 * g + l];
            b->bsums[g] = (int16_t)s;
        }
        b->d = roost_test_rng_scale(rng, -12, -4, 0);
        return 1;
    }
    default:
        return 0;
    }
}
