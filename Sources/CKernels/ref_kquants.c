#include "internal.h"

void roost_register_ref_kquants(roost_kernels *k) { (void)k; }
