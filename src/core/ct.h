/* Constant-time testing (tests/tfhe/test_ct.c runs under valgrind's memcheck, which reports any
 * branch or memory index that depends on undefined memory): the test marks the secret key
 * undefined, and the library marks here what is public by construction once computed from it, a
 * ciphertext's body or a decoded output (the client's own result), so that only what stays secret
 * is tracked (the method of libsodium's and mlkem-native's constant-time tests). Without
 * valgrind's headers, and outside valgrind, these cost a few instructions. Internal to libveil. */
#ifndef VEIL_CORE_CT_H
#define VEIL_CORE_CT_H

#ifdef VEIL_HAVE_VALGRIND
#include <valgrind/memcheck.h>
#define VEIL_CT_PUBLIC(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#else
#define VEIL_CT_PUBLIC(p, n) ((void)(p), (void)(n))
#endif

#endif
