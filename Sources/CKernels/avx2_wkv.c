// RWKV WKV kernels, avx2 path (not yet written: the table takes the ref ones).
#include "internal.h"

void roost_register_avx2_wkv(roost_kernels *k) { (void)k; }
