/*
** libcurl, loaded when first needed (curl_api.h, dynlib.h); once loaded,
** curl_global_init runs, once.
*/
#define TIDE_CURL_API_H_TABLE 1
#include <string.h>

#include "curl_api.h"
#include "dynlib.h"

tide_CurlApi tide_curl;

#define TIDE_API_NAME(f) #f,
static const char *const names[] = { TIDE_CURL_FUNCS(TIDE_API_NAME) NULL };
#undef TIDE_API_NAME

static void *slots[sizeof names / sizeof names[0]];

/* The addresses dlsym gave, into the typed table (POSIX: a function's
** address fits in a void pointer); then libcurl's global setup, which
** must run before any other thread uses it (the load is under a lock). */
static void fill(void) {
  size_t i = 0;
#define TIDE_API_FILL(f) memcpy(&tide_curl.f, &slots[i++], sizeof tide_curl.f);
  TIDE_CURL_FUNCS(TIDE_API_FILL)
#undef TIDE_API_FILL
  tide_curl.curl_global_init(CURL_GLOBAL_DEFAULT);
}

static tide_Dynlib lib = { "libcurl.so.4", "libcurl4", "HTTP (model calls)",
                           names, slots, fill, 0, "" };

int tide_curl_need(const char **message) {
  return tide_dynlib_need(&lib, message);
}
