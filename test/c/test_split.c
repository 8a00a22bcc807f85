/* C tests of the splitter core and the language table. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "language.h"
#include "split.h"

int main(void);

static tide_SplitLang *compile(const char *name) {
  const tide_Language *l = tide_language_find(name, strlen(name));
  tide_SplitEntry entries[512];
  size_t n;
  tide_SplitLang *lang;
  if (l == NULL) return NULL;
  n = tide_language_entries(l, NULL);
  if (n > 512) return NULL;
  tide_language_entries(l, entries);
  lang = malloc(tide_splitlang_size(entries, n));
  if (lang && tide_splitlang_build(lang, entries, n) != lang) {
    free(lang);
    return NULL;
  }
  return lang;
}

static void test_language_key(void) {
  char name[32];
  const char *ext;
  CHECK_EQ_INT(tide_language_key("src/Foo.H", 9, name, sizeof name, &ext), 0);
  CHECK(strcmp(name, "foo.h") == 0);
  CHECK(ext != NULL && strcmp(ext, "h") == 0);
  CHECK_EQ_INT(tide_language_key("a/.bashrc", 9, name, sizeof name, &ext),
               0);
  CHECK(strcmp(name, ".bashrc") == 0 && ext == NULL);
  CHECK_EQ_INT(tide_language_key("file.", 5, name, sizeof name, &ext), 0);
  CHECK(ext == NULL);
  CHECK_EQ_INT(tide_language_key("dir/", 4, name, sizeof name, &ext), -1);
  CHECK_EQ_INT(tide_language_key("", 0, name, sizeof name, &ext), -1);
  CHECK_EQ_INT(tide_language_key("a-very-long-file-name-indeed.txt", 32,
                                 name, sizeof name, &ext),
               -1);
}

static void test_language_lookup(void) {
  CHECK(strcmp(tide_language_by_filename("makefile")->name, "make") == 0);
  CHECK(strcmp(tide_language_by_filename("cmakelists.txt")->name,
               "cmake") == 0);
  CHECK(strcmp(tide_language_by_extension("h")->name, "c") == 0);
  CHECK(strcmp(tide_language_by_extension("mdx")->name, "markdown") == 0);
  CHECK(tide_language_by_extension("gz") == NULL);
  CHECK(tide_language_by_filename("readme") == NULL);
  CHECK(tide_language_find("rust", 4) != NULL);
  CHECK(tide_language_find("rus", 3) == NULL);
}

static void test_builtins_compile(void) {
  size_t i, extensions = 0;
  const tide_Language *l;
  for (i = 0; (l = tide_language_at(i)) != NULL; i++) {
    tide_SplitLang *lang = compile(l->name);
    const char *const *e;
    CHECK(lang != NULL);
    free(lang);
    for (e = l->extensions; e && *e; e++) extensions++;
    for (e = l->filenames; e && *e; e++) extensions++;
  }
  CHECK(i >= 15);
  CHECK(extensions >= 40);
}

static void test_check_entries(void) {
  tide_SplitEntry e[3] = {
    {"^# ", 3, TIDE_SPLIT_SEP, 0},
    {"\n\n", 2, TIDE_SPLIT_SEP, 1},
    {"^", 1, TIDE_SPLIT_SEP, 2},
  };
  size_t bad;
  CHECK_STR_CONTAINS(tide_splitlang_check(e, 3, &bad), "empty");
  CHECK_EQ_INT(bad, 2);
  CHECK_EQ_INT(tide_splitlang_size(e, 3), 0);
  e[2].text = "\xa9x";
  e[2].len = 2;
  CHECK_STR_CONTAINS(tide_splitlang_check(e, 3, &bad), "continuation");
  e[2].text = "x";
  e[2].len = 1;
  e[2].level = TIDE_SPLIT_MAXLEVELS;
  CHECK_STR_CONTAINS(tide_splitlang_check(e, 3, &bad), "level");
  e[2].level = 2;
  CHECK(tide_splitlang_check(e, 3, &bad) == NULL);
  CHECK(tide_splitlang_size(e, 3) > 0);
}

static void test_options(void) {
  tide_Split s;
  tide_SplitOptions bad[] = {{0, 0, 0}, {10, 10, 10}, {10, 0, 11},
                             {10, 6, 5}};
  size_t i;
  tide_split_init(&s, NULL, NULL);
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_EQ_INT(tide_split_run(&s, (const uint8_t *)"x", 1, &bad[i], NULL),
                 TIDE_EINVAL);
  tide_split_close(&s);
  tide_split_close(NULL);
}

static void test_positions(void) {
  /* "é" is two bytes; a stop names the last code point's last byte. */
  const char *text = "ab\n\xc3\xa9 cd ef\ngh";
  tide_SplitOptions o = {6, 0, 0};
  tide_Split s;
  tide_split_init(&s, NULL, NULL);
  CHECK_EQ_INT(tide_split_run(&s, (const uint8_t *)text, strlen(text), &o,
                              NULL),
               0);
  CHECK_EQ_INT(s.count, 3);
  if (s.count == 3) {
    CHECK_EQ_INT(s.chunks[0].start.byte, 1);
    CHECK_EQ_INT(s.chunks[0].stop.byte, 3);
    CHECK_EQ_INT(s.chunks[1].start.byte, 4);
    CHECK_EQ_INT(s.chunks[1].start.chr, 4);
    CHECK_EQ_INT(s.chunks[1].start.line, 2);
    CHECK_EQ_INT(s.chunks[1].start.column, 1);
    CHECK_EQ_INT(s.chunks[1].stop.byte, 9);
    CHECK_EQ_INT(s.chunks[1].stop.chr, 8);
    CHECK_EQ_INT(s.chunks[1].stop.column, 5);
    CHECK_EQ_INT(s.chunks[2].start.byte, 10);
    CHECK_EQ_INT(s.chunks[2].stop.byte, 14);
    CHECK_EQ_INT(s.chunks[2].stop.line, 3);
    CHECK_EQ_INT(s.chunks[2].stop.column, 2);
  }
  tide_split_close(&s);
}

/* Every allocation failure is reported and leaks nothing; a splitter
** that failed can run again. */
static void test_out_of_memory(void) {
  static const char para[] =
    "## Part\n\nSome words here, and more words there. Then a sentence."
    "\n\nlocal function f()\n  return 1\nend\n\n";
  char text[4096];
  size_t i, len = 0;
  int budget, ok = 0;
  tide_SplitLang *lang = compile("markdown");
  tide_SplitOptions o = {40, 8, 20};
  for (i = 0; len + sizeof para < sizeof text; i++) {
    memcpy(text + len, para, sizeof para - 1);
    len += sizeof para - 1;
  }
  for (budget = 0; budget < 200 && !ok; budget++) {
    Budget b = {budget, 0};
    tide_Split s;
    int rc;
    tide_split_init(&s, budget_alloc, &b);
    rc = tide_split_run(&s, (const uint8_t *)text, len, &o, lang);
    CHECK(rc == 0 || rc == TIDE_ENOMEM);
    if (rc == 0) {
      ok = 1;
      CHECK(s.count > 10);
    }
    b.budget = -1;
    CHECK_EQ_INT(tide_split_run(&s, (const uint8_t *)text, len, &o, lang),
                 0);
    tide_split_close(&s);
    CHECK_EQ_INT(b.live, 0);
  }
  CHECK(ok);
  free(lang);
}

int main(void) {
  static const CheckTest tests[] = {
    {"language_key", test_language_key},
    {"language_lookup", test_language_lookup},
    {"builtins_compile", test_builtins_compile},
    {"check_entries", test_check_entries},
    {"options", test_options},
    {"positions", test_positions},
    {"out_of_memory", test_out_of_memory},
    {NULL, NULL},
  };
  return check_run("split", tests);
}
