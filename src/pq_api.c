/*
** libpq, loaded when first needed (pq_api.h, dynlib.h).
*/
#define TIDE_PQ_API_H_TABLE 1
#include <string.h>

#include "dynlib.h"
#include "pq_api.h"

tide_PqApi tide_pq;

#define TIDE_API_NAME(f) #f,
static const char *const names[] = { TIDE_PQ_FUNCS(TIDE_API_NAME) NULL };
#undef TIDE_API_NAME

static void *slots[sizeof names / sizeof names[0]];

/* The addresses dlsym gave, into the typed table (POSIX: a function's
** address fits in a void pointer). */
static void fill(void) {
  size_t i = 0;
#define TIDE_API_FILL(f) memcpy(&tide_pq.f, &slots[i++], sizeof tide_pq.f);
  TIDE_PQ_FUNCS(TIDE_API_FILL)
#undef TIDE_API_FILL
}

static tide_Dynlib lib = { "libpq.so.5", "libpq5", "PostgreSQL support",
                           names, slots, fill, 0, "" };

int tide_pq_need(const char **message) {
  return tide_dynlib_need(&lib, message);
}
