/* Fingerprints: BLAKE2b-128 through libb2. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <blake2.h>

#include "error.h"
#include "fingerprint.h"
#include "tide.h"

void tide_fp_bytes(tide_Fp *fp, const void *p, size_t n) {
  blake2b(fp->bytes, p, NULL, TIDE_FP_SIZE, n, 0);
}

int tide_fp_file(tide_Fp *fp, const char *path, char *err, size_t errlen) {
  blake2b_state state;
  uint8_t chunk[64 * 1024];
  char text[TIDE_ERRNO_TEXT_SIZE];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", path,
             tide_error_errno_text(errno, text, sizeof text));
    return TIDE_EIO;
  }
  blake2b_init(&state, TIDE_FP_SIZE);
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      snprintf(err, errlen, "%s: %s", path,
               tide_error_errno_text(errno, text, sizeof text));
      close(fd);
      return TIDE_EIO;
    }
    if (n == 0) break;
    blake2b_update(&state, chunk, (size_t)n);
  }
  close(fd);
  blake2b_final(&state, fp->bytes, TIDE_FP_SIZE);
  return 0;
}

void tide_fp_hex(const tide_Fp *fp, char hex[2 * TIDE_FP_SIZE + 1]) {
  static const char digits[] = "0123456789abcdef";
  int i;
  for (i = 0; i < TIDE_FP_SIZE; i++) {
    hex[2 * i] = digits[fp->bytes[i] >> 4];
    hex[2 * i + 1] = digits[fp->bytes[i] & 15];
  }
  hex[2 * TIDE_FP_SIZE] = '\0';
}
