/*
** The embeddings answer reader (embed_answer.h): both shapes, index
** order, numbers exactly as strtod reads them (then float32), and every
** refusal with its message.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "embed_answer.h"

static tide_EmbedAnswer a;

static int read(const char *json) {
  return tide_embed_answer_read(&a, json, strlen(json));
}

static float at(size_t vector, size_t i) {
  return ((const float *)a.floats.data)[vector * a.dims + i];
}

static void test_shapes(void) {
  tide_embed_answer_init(&a, tide_alloc_default, NULL);
  CHECK_EQ_INT(read("{\"object\":\"list\",\"data\":[{\"object\":\"embedding\","
                    "\"index\":1,\"embedding\":[3,4]},{\"embedding\":[1,2],"
                    "\"index\":0}],\"usage\":{\"total_tokens\":2}}"), 0);
  CHECK_EQ_INT(a.count, 2);
  CHECK_EQ_INT(a.dims, 2);
  CHECK(at(0, 0) == 1 && at(0, 1) == 2 && at(1, 0) == 3 && at(1, 1) == 4);
  /* Without index: document order. */
  CHECK_EQ_INT(read(" {\"data\" : [ {\"embedding\":[5]} , {\"embedding\":"
                    "[6]} ] } \n"), 0);
  CHECK(at(0, 0) == 5 && at(1, 0) == 6);
  CHECK_EQ_INT(read("{\"model\":\"m\",\"embeddings\":[[0.5,-0.25],[1e-3,"
                    "-0]]}"), 0);
  CHECK_EQ_INT(a.count, 2);
  CHECK(at(0, 1) == -0.25f && at(1, 0) == 1e-3f);
  CHECK(at(1, 1) == 0 && signbit(at(1, 1)));
  /* A member name written with escapes is the same name. */
  CHECK_EQ_INT(read("{\"\\u0064ata\":[{\"embedding\":[7],\"s\":\"\\\"\\u00e9"
                    "\\ud83d\\ude00\"}]}"), 0);
  CHECK(at(0, 0) == 7);
  CHECK_EQ_INT(read("{\"data\":[]}"), 0);
  CHECK_EQ_INT(a.count, 0);
  tide_embed_answer_close(&a);
}

/* Numbers: the fast path and strtod agree on every one. */
static void test_numbers(void) {
  char json[256];
  int i;
  srand(7);
  tide_embed_answer_init(&a, tide_alloc_default, NULL);
  for (i = 0; i < 20000; i++) {
    char num[64];
    double d;
    int kind = i % 4;
    if (kind == 0)
      snprintf(num, sizeof num, "%.*f", rand() % 18,
               (rand() / (double)RAND_MAX - 0.5) * 4);
    else if (kind == 1)
      snprintf(num, sizeof num, "%.17g", (rand() / (double)RAND_MAX) * 1e-5);
    else if (kind == 2)
      snprintf(num, sizeof num, "%de%d", rand() % 100000, rand() % 60 - 30);
    else
      snprintf(num, sizeof num, "-%d.%06de-%d", rand() % 10, rand() % 1000000,
               rand() % 25);
    snprintf(json, sizeof json, "{\"embeddings\":[[%s]]}", num);
    d = strtod(num, NULL);
    if (!isfinite((float)d)) continue;
    CHECK_EQ_INT(read(json), 0);
    if (at(0, 0) != (float)d && !(isnan(at(0, 0)))) {
      fprintf(stderr, "  %s: %.9g, strtod %.9g\n", num, (double)at(0, 0), d);
      CHECK(0);
      break;
    }
  }
  CHECK_EQ_INT(read("{\"embeddings\":[[0.30000000000000004441, "
                    "123456789012345678901234567890e-30]]}"), 0);
  CHECK(at(0, 0) == (float)0.30000000000000004441);
  CHECK(at(0, 1) == (float)0.123456789012345678901234567890);
  tide_embed_answer_close(&a);
}

static void refused(const char *json, const char *message) {
  CHECK_EQ_INT(read(json), TIDE_EINVAL);
  CHECK_STR_CONTAINS(a.err, message);
  CHECK_EQ_INT(a.count, 0);
}

static void test_refusals(void) {
  tide_embed_answer_init(&a, tide_alloc_default, NULL);
  refused("", "offset 0: expected a JSON object");
  refused("[1]", "offset 0: expected a JSON object");
  refused("{\"data\":[{\"embedding\":[1,]}]}",
          "offset 25: expected a number");
  refused("{\"data\":[{\"embedding\":[1]}],}", "expected a string");
  refused("{\"data\":[{\"embedding\":[1]}]} x", "more after the JSON value");
  refused("{\"data\":[{\"embedding\":[01]}]}", "expected ',' or ']' in a "
          "vector");
  refused("{\"data\":[{\"embedding\":[1.]}]}", "expected a digit after '.'");
  refused("{\"data\":[{\"embedding\":[NaN]}]}", "expected a number");
  refused("{\"data\":[{\"embedding\":[1e39]}]}",
          "vector 1, number 1 is not finite as a float32");
  refused("{\"data\":[{\"embedding\":[]}]}", "vector 1 is empty");
  refused("{\"embeddings\":[[1,2],[3]]}", "vector 2 has 1 numbers, vector 1 "
          "has 2");
  refused("{\"data\":[{\"index\":0}]}", "an entry of data has no embedding");
  refused("{\"data\":[{\"embedding\":[1],\"index\":0},{\"embedding\":[2]}]}",
          "some entries of data have an index, others not");
  refused("{\"data\":[{\"embedding\":[1],\"index\":1},{\"embedding\":[2],"
          "\"index\":1}]}", "index 1 appears twice");
  refused("{\"data\":[{\"embedding\":[1],\"index\":5}]}",
          "index 5 in an answer of 1 vectors");
  refused("{\"data\":[{\"embedding\":[1],\"index\":-1}]}",
          "index is not an integer 0 or more");
  refused("{\"model\":\"m\"}", "no data or embeddings list");
  refused("{\"data\":[],\"embeddings\":[]}", "two lists of vectors");
  refused("{\"s\":\"a\nb\"}", "a control character in a string");
  refused("{\"s\":\"\\x\"}", "a bad escape in a string");
  refused("{\"s\":\"\\ud800\"}", "a lone surrogate");
  refused("{\"s\":\"abc", "a string without its closing quote");
  refused("{\"t\":tru}", "expected a value");
  {
    char doc[300];
    snprintf(doc, sizeof doc, "{\"x\":%.*s", 80, "[[[[[[[[[[[[[[[[[[[[[[[["
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
    refused(doc, "nested more than 64 deep");
  }
  tide_embed_answer_close(&a);
}

int main(void) {
  static const CheckTest tests[] = {
    {"the OpenAI and Ollama shapes, index order", test_shapes},
    {"numbers as strtod reads them", test_numbers},
    {"refusals and their messages", test_refusals},
    {NULL, NULL},
  };
  return check_run("embed_answer", tests);
}
