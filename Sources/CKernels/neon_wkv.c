// RWKV WKV kernels, neon path (not yet written: the table takes the ref ones).
#include "internal.h"

void roost_register_neon_wkv(roost_kernels *k) { (void)k; }
