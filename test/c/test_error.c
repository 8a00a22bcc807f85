/* C tests of error codes: names and texts come from TIDE_ERRNO_MAP, every
** code has its own, and the errno texts read as tide's messages do. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "error.h"
#include "tide.h"

static void test_names(void) {
  int code, count = 0;
  CHECK(strcmp(tide_err_name(TIDE_OK), "OK") == 0);
  CHECK(strcmp(tide_err_name(TIDE_ENOMEM), "ENOMEM") == 0);
  CHECK(strcmp(tide_err_name(TIDE_ENOTSTORE), "ENOTSTORE") == 0);
  CHECK(strcmp(tide_err_name(1), "UNKNOWN") == 0);
  CHECK(strcmp(tide_err_name(-(int)TIDE__ELAST), "UNKNOWN") == 0);
  /* Every code of the list: a name of its own and a text of its own. */
  for (code = -1; code > -(int)TIDE__ELAST; code--) {
    int other;
    count++;
    CHECK(tide_err_name(code)[0] == 'E');
    CHECK(strcmp(tide_strerror(code), "unknown error") != 0);
    for (other = code - 1; other > -(int)TIDE__ELAST; other--) {
      CHECK(strcmp(tide_err_name(code), tide_err_name(other)) != 0);
      CHECK(strcmp(tide_strerror(code), tide_strerror(other)) != 0);
    }
  }
  CHECK_EQ_INT(count, (int)TIDE__ELAST - 1);
  CHECK(strcmp(tide_strerror(TIDE_ELOCKED),
               "state store is locked by another writer") == 0);
  CHECK(strcmp(tide_strerror(7), "unknown error") == 0);
}

static void test_errno_text(void) {
  char buf[TIDE_ERRNO_TEXT_SIZE];
  CHECK(strcmp(tide_error_errno_text(ENOENT, buf, sizeof buf),
               "no such file or directory") == 0);
  CHECK(strcmp(tide_error_errno_text(EIO, buf, sizeof buf),
               "input/output error") == 0);
}

int main(void) {
  static const CheckTest tests[] = {
    {"names and texts from the one list", test_names},
    {"errno texts in lower case", test_errno_text},
    {NULL, NULL},
  };
  return check_run("error", tests);
}
