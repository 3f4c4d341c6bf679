#include "internal.h"

static const roost_type_traits traits[ROOST_TYPE_COUNT] = {
    [ROOST_TYPE_F32] = {"f32", 1, 4, ROOST_TYPE_F32},
    [ROOST_TYPE_F16] = {"f16", 1, 2, ROOST_TYPE_F32},
    [ROOST_TYPE_BF16] = {"bf16", 1, 2, ROOST_TYPE_F32},
    [ROOST_TYPE_Q4_0] = {"q4_0", QK4_0, sizeof(block_q4_0), ROOST_TYPE_Q8_0},
    [ROOST_TYPE_Q4_1] = {"q4_1", QK4_1, sizeof(block_q4_1), ROOST_TYPE_Q8_1},
    [ROOST_TYPE_Q5_0] = {"q5_0", QK5_0, sizeof(block_q5_0), ROOST_TYPE_Q8_0},
    [ROOST_TYPE_Q5_1] = {"q5_1", QK5_1, sizeof(block_q5_1), ROOST_TYPE_Q8_1},
    [ROOST_TYPE_Q8_0] = {"q8_0", QK8_0, sizeof(block_q8_0), ROOST_TYPE_Q8_0},
    [ROOST_TYPE_Q8_1] = {"q8_1", QK8_1, sizeof(block_q8_1), -1},
    [ROOST_TYPE_Q2_K] = {"q2_K", QK_K, sizeof(block_q2_K), ROOST_TYPE_Q8_K},
    [ROOST_TYPE_Q3_K] = {"q3_K", QK_K, sizeof(block_q3_K), ROOST_TYPE_Q8_K},
    [ROOST_TYPE_Q4_K] = {"q4_K", QK_K, sizeof(block_q4_K), ROOST_TYPE_Q8_K},
    [ROOST_TYPE_Q5_K] = {"q5_K", QK_K, sizeof(block_q5_K), ROOST_TYPE_Q8_K},
    [ROOST_TYPE_Q6_K] = {"q6_K", QK_K, sizeof(block_q6_K), ROOST_TYPE_Q8_K},
    [ROOST_TYPE_Q8_K] = {"q8_K", QK_K, sizeof(block_q8_K), -1},
};

const roost_type_traits *roost_type_traits_get(int32_t type) {
    if (type < 0 || type >= ROOST_TYPE_COUNT || traits[type].name == NULL) return NULL;
    return &traits[type];
}

// IEEE half <-> single, bit exact, portable.
float roost_fp16_to_fp32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { // subnormal: normalize
            int e = -1;
            do { mant <<= 1; e++; } while ((mant & 0x400u) == 0);
            mant &= 0x3ffu;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t roost_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);          // NaN
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);         // overflow -> inf
    if (absx < 0x38800000u) {                                           // subnormal or zero
        if (absx < 0x33000000u) return (uint16_t)sign;                  // < half of smallest subnormal
        const uint32_t e = absx >> 23;
        const uint32_t m = (absx & 0x7fffffu) | 0x800000u;
        // value = m * 2^(e-150); half subnormal unit = 2^-24 -> q = m * 2^(e-126)
        const uint32_t s = 126 - e; // right shift amount (>= 1)
        uint32_t q = m >> s;
        const uint32_t rem = m & ((1u << s) - 1u);
        const uint32_t halfway = 1u << (s - 1);
        if (rem > halfway || (rem == halfway && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    // normal
    uint32_t m = absx + 0xc8000000u; // rebias exponent: -112 << 23
    const uint32_t lsb = (m >> 13) & 1u;
    m += 0xfffu + lsb; // round to nearest even
    return (uint16_t)(sign | (m >> 13));
}

float roost_bf16_to_fp32(uint16_t h) {
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t roost_fp32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 64); // quiet NaN
    return (uint16_t)((x + (0x7fffu + ((x >> 16) & 1u))) >> 16);
}
