/* C tests of the hash embedding (hash_embed.h): the bits of a reference
** computed outside C from the header's description of the algorithm,
** determinism, norm 1, the zero vector, tokenisation, dimensions and
** lexical similarity. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hash_embed.h"

int main(void);

#define CHECK_NEAR(a, b, tol) CHECK(fabs((double)(a) - (double)(b)) <= (tol))

static float a16[16], b16[16];
static float a256[256], b256[256], c256[256];

static double dot(const float *x, const float *y, size_t n) {
  double s = 0;
  size_t i;
  for (i = 0; i < n; i++) s += (double)x[i] * y[i];
  return s;
}

static size_t embed(const char *text, float *out, size_t dims) {
  return tide_hash_embed(text, strlen(text), out, dims);
}

static int all_zero(const float *v, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (v[i] != 0) return 0;
  return 1;
}

/* The vector of a text mixing ASCII, Latin letters, CJK, a Latin-1 byte
** (invalid UTF-8), an em dash and an underscore, as an independent
** Python transcription of hash_embed.h computes it: the exact bits, so
** that a change to the algorithm cannot go unnoticed (it must change
** TIDE_HASH_EMBED_VERSION). */
static void test_reference_bits(void) {
  static const char text[] = "Hello, World! \xc3\x9cn\xc3\xaf" "code "
                             "\xe4\xb8\x96\xe7\x95\x8c caf\xe9 \xe2\x80\x94 "
                             "hash_embed";
  static const float want[16] = {
    -0.333333343f, 0.166666672f, -0.333333343f, 0, 0, -0.166666672f,
    -0.166666672f, 0.666666687f, 0.333333343f, -0.166666672f,
    0.166666672f, 0, -0.166666672f, 0.166666672f, 0.166666672f, 0};
  static const float fox[8] = {
    -0.150755674f, 0.301511347f, 0, 0.301511347f, 0.452267021f,
    0.452267021f, -0.603022695f, 0.150755674f};
  CHECK_EQ_INT(tide_hash_embed(text, sizeof text - 1, a16, 16), 39);
  CHECK(memcmp(a16, want, sizeof want) == 0);
  CHECK_EQ_INT(embed("The quick brown fox", a16, 8), 4 + 6 + 6 + 4);
  CHECK(memcmp(a16, fox, sizeof fox) == 0);
  CHECK_EQ_INT(TIDE_HASH_EMBED_VERSION, 1);
}

static void test_deterministic_and_normalised(void) {
  static const char *texts[] = {
    "a", "The quick brown fox jumps over the lazy dog.",
    "caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
    "x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x", NULL};
  size_t dims[] = {1, 2, 3, 7, 256, 1000, TIDE_HASH_EMBED_MAX_DIMS};
  float *big = malloc(TIDE_HASH_EMBED_MAX_DIMS * sizeof *big);
  float *again = malloc(TIDE_HASH_EMBED_MAX_DIMS * sizeof *again);
  size_t i, j;
  CHECK(big != NULL && again != NULL);
  if (big == NULL || again == NULL) goto done;
  for (i = 0; texts[i]; i++) {
    for (j = 0; j < sizeof dims / sizeof dims[0]; j++) {
      size_t n = dims[j];
      CHECK(embed(texts[i], big, n) > 0);
      CHECK_NEAR(dot(big, big, n), 1, 1e-6);
      memset(again, 0x7f, n * sizeof *again); /* out is overwritten */
      embed(texts[i], again, n);
      CHECK(memcmp(big, again, n * sizeof *big) == 0);
    }
  }
  /* One dimension: every feature lands in it, the result is +-1. */
  embed("one", a16, 1);
  CHECK(a16[0] == 1 || a16[0] == -1);
done:
  free(big);
  free(again);
}

static void test_zero_vector(void) {
  static const char *texts[] = {
    "", " ", "\t\n  ", "!?.,;:-_()[]{}<>/\\'\"`~@#$%^&*+=|",
    "\xe2\x80\x9c\xe2\x80\x94\xe2\x80\x9d \xc2\xab\xc2\xbb \xc2\xa0 "
    "\xe3\x80\x82 \xef\xbc\x81 \xf0\x9f\x98\x80", NULL};
  size_t i;
  for (i = 0; texts[i]; i++) {
    memset(a16, 0x7f, sizeof a16);
    CHECK_EQ_INT(embed(texts[i], a16, 16), 0);
    CHECK(all_zero(a16, 16));
  }
  /* A NUL byte is a separator, not an end. */
  CHECK_EQ_INT(tide_hash_embed("\0\0", 2, a16, 16), 0);
  CHECK_EQ_INT(tide_hash_embed("ab\0cd", 5, a16, 16), 6);
  embed("ab cd", b16, 16);
  CHECK(memcmp(a16, b16, sizeof a16) == 0);
}

static void test_tokenisation(void) {
  /* Words and 3-grams: "ab" has (B a b) (a b B), "c" has (B c B). */
  CHECK_EQ_INT(embed("ab c", a16, 16), 3 + 2);
  /* ASCII case folds; separators are all alike. */
  embed("Hello World", a256, 256);
  embed("hello, WORLD!", b256, 256);
  CHECK(memcmp(a256, b256, sizeof a256) == 0);
  embed("hash_embed", a256, 256);
  embed("hash \xe2\x80\x94 embed", b256, 256);
  CHECK(memcmp(a256, b256, sizeof a256) == 0);
  /* Outside ASCII nothing folds, and letters are word characters. */
  embed("\xc3\x89t\xc3\xa9", a256, 256);
  embed("\xc3\xa9t\xc3\xa9", b256, 256);
  CHECK(memcmp(a256, b256, sizeof a256) != 0);
  CHECK_EQ_INT(embed("\xc3\xa9t\xc3\xa9", b256, 256), 3 + 1);
  /* An invalid byte is a word character of its own. */
  CHECK_EQ_INT(embed("caf\xe9", a256, 256), 4 + 1);
  embed("caf", b256, 256);
  CHECK(memcmp(a256, b256, sizeof a256) != 0);
  /* Order within a text does not matter, order within a word does. */
  embed("fox brown", a256, 256);
  embed("brown fox", b256, 256);
  CHECK(memcmp(a256, b256, sizeof a256) == 0);
  embed("brown", a256, 256);
  embed("nworb", b256, 256);
  CHECK(dot(a256, b256, 256) < 0.5);
}

static void test_similarity(void) {
  const char *query = "incremental processing of documents into a SQLite "
                      "table";
  embed(query, a256, 256);
  embed("tide processes documents incrementally and writes the rows into "
        "SQLite tables", b256, 256);
  embed("the recipe needs two cups of flour, sugar and butter", c256, 256);
  CHECK(dot(a256, b256, 256) > 0.3);
  CHECK(dot(a256, b256, 256) > dot(a256, c256, 256) + 0.2);
  /* Shared subwords count: a word and its inflections. */
  embed("embedding", a256, 256);
  embed("embedder", b256, 256);
  embed("parsers", c256, 256);
  CHECK(dot(a256, b256, 256) > 0.2);
  CHECK(dot(a256, b256, 256) > dot(a256, c256, 256) + 0.2);
  /* The same text twice over points the same way. */
  embed("lexical similarity", a256, 256);
  embed("lexical similarity lexical similarity", b256, 256);
  CHECK_NEAR(dot(a256, b256, 256), 1, 1e-6);
}

int main(void) {
  static const CheckTest tests[] = {
    {"reference_bits", test_reference_bits},
    {"deterministic_and_normalised", test_deterministic_and_normalised},
    {"zero_vector", test_zero_vector},
    {"tokenisation", test_tokenisation},
    {"similarity", test_similarity},
    {NULL, NULL},
  };
  return check_run("hash_embed", tests);
}
