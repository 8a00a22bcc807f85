/* Error code names and descriptions, errno texts, the version string. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "tide.h"

/* Both derived from TIDE_ERRNO_MAP, so a code added there has its name
** and its text everywhere at once. */
const char *tide_strerror(int code) {
  switch (code) {
  case TIDE_OK: return "success";
#define TIDE_ERRNO_CASE(name, msg) case TIDE_E##name: return msg;
  TIDE_ERRNO_MAP(TIDE_ERRNO_CASE)
#undef TIDE_ERRNO_CASE
  default: return "unknown error";
  }
}

const char *tide_err_name(int code) {
  switch (code) {
  case TIDE_OK: return "OK";
#define TIDE_ERRNO_NAME(name, msg) case TIDE_E##name: return "E" #name;
  TIDE_ERRNO_MAP(TIDE_ERRNO_NAME)
#undef TIDE_ERRNO_NAME
  default: return "UNKNOWN";
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
