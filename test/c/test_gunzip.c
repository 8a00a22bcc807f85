/* C tests of gzip decompression (gunzip.h): limits, several members,
** damaged input, and allocation failures at every step without leaks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "check.h"
#include "gunzip.h"

int main(void);

/* The gzip compression of n bytes at s into out (cap bytes); its size. */
static size_t compress_gz(const void *s, size_t n, uint8_t *out, size_t cap) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK)
    return 0;
  z.next_in = (Bytef *)(uintptr_t)s;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
    deflateEnd(&z);
    return 0;
  }
  deflateEnd(&z);
  return cap - z.avail_out;
}

static uint8_t gz[1 << 20];
static char plain[1 << 20];

static int run(const uint8_t *in, size_t len, size_t limit, tide_Buf *out,
               char *err) {
  tide_buf_init(out, NULL, NULL);
  return tide_gunzip(in, len, limit, out, err, 256);
}

static void test_round_trip(void) {
  size_t i, n;
  tide_Buf out;
  char err[256];
  for (i = 0; i < sizeof plain; i++) plain[i] = (char)("tide\n"[i % 5] + i % 7);
  n = compress_gz(plain, sizeof plain, gz, sizeof gz);
  CHECK(n > 0);
  CHECK(tide_gunzip_is_gzip(gz, n));
  CHECK(!tide_gunzip_is_gzip((const uint8_t *)"\x1f", 1));
  CHECK_EQ_INT(run(gz, n, TIDE_GUNZIP_LIMIT, &out, err), 0);
  CHECK_EQ_INT(out.len, sizeof plain);
  CHECK(out.len == sizeof plain && memcmp(out.data, plain, out.len) == 0);
  tide_buf_close(&out);
}

static void test_limit(void) {
  size_t n;
  tide_Buf out;
  char err[256];
  memset(plain, 0, sizeof plain);
  n = compress_gz(plain, sizeof plain, gz, sizeof gz);
  CHECK(n > 0 && n < 2048);
  CHECK_EQ_INT(run(gz, n, sizeof plain, &out, err), 0);
  CHECK_EQ_INT(out.len, sizeof plain);
  tide_buf_close(&out);
  CHECK_EQ_INT(run(gz, n, sizeof plain - 1, &out, err), TIDE_EDECODE);
  CHECK_STR_CONTAINS(err, "exceeds the limit of 1048575 bytes");
  /* Never much more than the limit is held. */
  CHECK(out.len <= sizeof plain);
  tide_buf_close(&out);
  CHECK_EQ_INT(run(gz, n, 0, &out, err), TIDE_EDECODE);
  tide_buf_close(&out);
}

static void test_members(void) {
  size_t a, b;
  tide_Buf out;
  char err[256];
  a = compress_gz("one ", 4, gz, sizeof gz);
  b = compress_gz("two", 3, gz + a, sizeof gz - a);
  CHECK_EQ_INT(run(gz, a + b, TIDE_GUNZIP_LIMIT, &out, err), 0);
  CHECK(out.len == 7 && memcmp(out.data, "one two", 7) == 0);
  tide_buf_close(&out);
  /* The limit counts every member. */
  CHECK_EQ_INT(run(gz, a + b, 6, &out, err), TIDE_EDECODE);
  tide_buf_close(&out);
  memset(gz + a + b, 0, 100);
  CHECK_EQ_INT(run(gz, a + b + 100, TIDE_GUNZIP_LIMIT, &out, err), 0);
  CHECK_EQ_INT(out.len, 7);
  tide_buf_close(&out);
  gz[a + b + 50] = 'x';
  CHECK_EQ_INT(run(gz, a + b + 100, TIDE_GUNZIP_LIMIT, &out, err),
               TIDE_EDECODE);
  CHECK_STR_CONTAINS(err, "unexpected data after the gzip stream");
  tide_buf_close(&out);
}

static void test_damaged(void) {
  size_t n, cut;
  tide_Buf out;
  char err[256];
  n = compress_gz("hello, hello, hello", 19, gz, sizeof gz);
  for (cut = 0; cut < n; cut++) {
    int rc = run(gz, cut, TIDE_GUNZIP_LIMIT, &out, err);
    CHECK_EQ_INT(rc, TIDE_EDECODE);
    /* Cut in the header or the data: the stream ends early; in the
    ** trailer, too, or its check fails. */
    CHECK(cut < 2 || strstr(err, "truncated") != NULL ||
          strstr(err, "corrupt") != NULL);
    tide_buf_close(&out);
  }
  CHECK_EQ_INT(run(gz, 1, TIDE_GUNZIP_LIMIT, &out, err), TIDE_EDECODE);
  CHECK_STR_CONTAINS(err, "not gzip data");
  tide_buf_close(&out);
  gz[n - 8] ^= 0xff; /* the CRC-32 */
  CHECK_EQ_INT(run(gz, n, TIDE_GUNZIP_LIMIT, &out, err), TIDE_EDECODE);
  CHECK_STR_CONTAINS(err, "corrupt gzip data (incorrect data check)");
  tide_buf_close(&out);
}

static void test_allocation_failures(void) {
  size_t n;
  long k;
  int ok = 0;
  memset(plain, 'a', 300000);
  n = compress_gz(plain, 300000, gz, sizeof gz);
  for (k = 0; k < 200 && !ok; k++) {
    Budget b = {k, 0};
    tide_Buf out;
    char err[256];
    int rc;
    tide_buf_init(&out, budget_alloc, &b);
    rc = tide_gunzip(gz, n, TIDE_GUNZIP_LIMIT, &out, err, sizeof err);
    if (rc == 0) {
      ok = 1;
      CHECK_EQ_INT(out.len, 300000);
    } else {
      CHECK_EQ_INT(rc, TIDE_ENOMEM);
      CHECK_STR_CONTAINS(err, "out of memory");
    }
    tide_buf_close(&out);
    CHECK_EQ_INT(b.live, 0);
  }
  CHECK(ok);
}

int main(void) {
  static const CheckTest tests[] = {
    {"round trip", test_round_trip},
    {"limit", test_limit},
    {"members", test_members},
    {"damaged", test_damaged},
    {"allocation failures", test_allocation_failures},
    {NULL, NULL},
  };
  return check_run("gunzip", tests);
}
