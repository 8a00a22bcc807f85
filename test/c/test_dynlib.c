/*
** Shared libraries loaded when first needed (dynlib.h): a library found
** gives its functions; a missing one, or one that lacks a function, gives
** a message that names the package, every time it is asked for. (That
** tide itself starts without libpq and libcurl: api_spec.lua.)
*/
#include <math.h>

#include "check.h"
#include "dynlib.h"

static double (*cos_fn)(double);
static int after_load;

static void loaded(void) { after_load++; }

static void test_found(void) {
  static const char *const names[] = { "cos", NULL };
  void *fns[1] = { NULL };
  tide_Dynlib d = { "libm.so.6", "libc6", "a test", names, fns, loaded, 0,
                    "" };
  const char *why = NULL;
  CHECK_EQ_INT(tide_dynlib_need(&d, &why), 0);
  CHECK_EQ_INT(tide_dynlib_need(&d, &why), 0);
  CHECK_EQ_INT(after_load, 1);
  memcpy(&cos_fn, &fns[0], sizeof cos_fn);
  CHECK(cos_fn != NULL && cos_fn(0.0) == 1.0);
}

static void test_missing(void) {
  static const char *const names[] = { "anything", NULL };
  void *fns[1] = { NULL };
  tide_Dynlib d = { "libtide-none.so.9", "tide-none", "Something", names,
                    fns, NULL, 0, "" };
  const char *why = NULL;
  CHECK_EQ_INT(tide_dynlib_need(&d, &why), -1);
  CHECK_STR_CONTAINS(why, "Something needs libtide-none.so.9 (Debian "
                     "package tide-none), which cannot be loaded");
  why = NULL;
  CHECK_EQ_INT(tide_dynlib_need(&d, &why), -1);
  CHECK_STR_CONTAINS(why, "Debian package tide-none");
}

static void test_lacks(void) {
  static const char *const names[] = { "cos", "tide_no_such_function",
                                       NULL };
  void *fns[2] = { NULL, NULL };
  tide_Dynlib d = { "libm.so.6", "libc6", "A test", names, fns, NULL, 0,
                    "" };
  const char *why = NULL;
  CHECK_EQ_INT(tide_dynlib_need(&d, &why), -1);
  CHECK_STR_CONTAINS(why, "A test needs tide_no_such_function from "
                     "libm.so.6 (Debian package libc6), which lacks it");
}

int main(void) {
  static const CheckTest tests[] = {
    {"a library found gives its functions, loaded once", test_found},
    {"a missing library names its package", test_missing},
    {"a library without a function says which", test_lacks},
    {NULL, NULL},
  };
  return check_run("dynlib", tests);
}
