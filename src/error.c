/* Error code descriptions, errno texts and the version string. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "tide.h"

const char *tide_strerror(int code) {
  switch (code) {
  case TIDE_OK: return "success";
#define TIDE_ERRNO_CASE(name, msg) case TIDE_E##name: return msg;
  TIDE_ERRNO_MAP(TIDE_ERRNO_CASE)
#undef TIDE_ERRNO_CASE
  default: return "unknown error";
  }
}

const char *tide_error_errno_text(int errnum, char *buf, size_t size) {
  if (size == 0) return "";
  buf[0] = '\0';
  /* The XSI strerror_r (no _GNU_SOURCE here): it fills buf. */
  if (strerror_r(errnum, buf, size) != 0 && buf[0] == '\0')
    snprintf(buf, size, "unknown error %d", errnum);
  if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z')
    buf[0] = (char)(buf[0] - 'A' + 'a');
  return buf;
}

const char *tide_version(void) { return TIDE_VERSION; }
