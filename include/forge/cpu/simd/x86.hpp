#pragma once
// <immintrin.h> for forge's x86 kernels. GCC 12.2's AVX-512 intrinsics initialise their "undefined"
// merge operands from themselves (`__m512 __Y = __Y;`), which -Wuninitialized reports at every inlined
// use (GCC bug 105593, fixed in 12.3); the warning is attributed to the header, so it is silenced here.
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
