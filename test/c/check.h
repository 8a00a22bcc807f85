/*
** A minimal C test harness: CHECK records a failure and goes on; each test
** binary ends by printing "N passed, N failed" and exits non-zero on any
** failure. A test is a function registered in a TESTS table.
*/
#ifndef TIDE_CHECK_H
#define TIDE_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures_in_test;

#define CHECK(cond)                                                       \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__,  \
              #cond);                                                     \
      check_failures_in_test++;                                           \
    }                                                                     \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                \
  do {                                                                    \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);       \
    if (check_a_ != check_b_) {                                           \
      fprintf(stderr, "  %s:%d: %s == %lld, expected %lld\n", __FILE__,   \
              __LINE__, #a, check_a_, check_b_);                          \
      check_failures_in_test++;                                           \
    }                                                                     \
  } while (0)

#define CHECK_STR_CONTAINS(haystack, needle)                              \
  do {                                                                    \
    const char *check_h_ = (haystack);                                    \
    if (check_h_ == NULL || strstr(check_h_, (needle)) == NULL) {         \
      fprintf(stderr, "  %s:%d: \"%s\" does not contain \"%s\"\n",        \
              __FILE__, __LINE__, check_h_ ? check_h_ : "(null)",         \
              (needle));                                                  \
      check_failures_in_test++;                                           \
    }                                                                     \
  } while (0)

/* An allocator (lua_Alloc's shape) that fails after `budget` allocations
** (never, when negative) and counts the blocks it has handed out, so that
** a test sees both how a failure is handled and whether anything leaked. */
typedef struct Budget {
  long budget;
  long live;
} Budget;

static inline void *budget_alloc(void *ud, void *ptr, size_t osize,
                                 size_t nsize) {
  Budget *b = ud;
  (void)osize;
  if (nsize == 0) {
    if (ptr) b->live--;
    free(ptr);
    return NULL;
  }
  if (b->budget == 0) return NULL;
  if (b->budget > 0) b->budget--;
  if (ptr == NULL) {
    void *p = malloc(nsize);
    if (p) b->live++;
    return p;
  }
  return realloc(ptr, nsize);
}

typedef struct {
  const char *name;
  void (*fn)(void);
} CheckTest;

static inline int check_run(const char *suite, const CheckTest *tests) {
  int passed = 0, failed = 0;
  for (; tests->name; tests++) {
    check_failures_in_test = 0;
    tests->fn();
    if (check_failures_in_test) {
      fprintf(stderr, "FAIL %s: %s\n", suite, tests->name);
      failed++;
    } else {
      passed++;
    }
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

#endif
