/* Error code descriptions and the version string. */
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

const char *tide_version(void) { return TIDE_VERSION; }
