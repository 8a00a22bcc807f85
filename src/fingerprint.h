/* Fingerprints: BLAKE2b-128 of bytes, of canonical values, of files. */
#ifndef TIDE_FINGERPRINT_H
#define TIDE_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#define TIDE_FP_SIZE 16

/* Files at least this large are read and hashed on libuv's thread pool
** by the component that needs them (the walk leaves a touched one
** unhashed; core.large_file tells Lua), except where the task cannot wait:
** a memo key computed from C hashes it on the loop's thread. */
#define TIDE_LARGE_FILE ((int64_t)1 << 20)

typedef struct tide_Fp {
  uint8_t bytes[TIDE_FP_SIZE];
} tide_Fp;

/* BLAKE2b-128 of n bytes. */
void tide_fp_bytes(tide_Fp *fp, const void *p, size_t n);

/* BLAKE2b-128 of a file's bytes, streamed. On failure returns TIDE_EIO
** with "PATH: reason" in err. */
int tide_fp_file(tide_Fp *fp, const char *path, char *err, size_t errlen);

/* 32 lowercase hex characters and a NUL into hex. */
void tide_fp_hex(const tide_Fp *fp, char hex[2 * TIDE_FP_SIZE + 1]);

#endif
