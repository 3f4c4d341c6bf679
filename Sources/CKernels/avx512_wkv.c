// RWKV WKV kernels, avx512 path (not yet written: the table takes the ref ones).
#include "internal.h"

void roost_register_avx512_wkv(roost_kernels *k) { (void)k; }
