/* C tests of glob patterns: syntax, whole-path decisions, the automaton
** the walker uses, and errors. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "glob.h"

/* Decides path against one list of patterns (NULL-terminated); returns 1
** selected, 0 not, -1 when the list does not compile. */
static int decide(const char *const *patterns, const char *path, int flags) {
  tide_GlobSet *set;
  char err[256];
  size_t n = 0;
  int winner, selected;
  while (patterns[n]) n++;
  if (tide_glob_new(&set, patterns, n, NULL, NULL, err, sizeof err) != 0) {
    fprintf(stderr, "  compile: %s\n", err);
    return -1;
  }
  CHECK_EQ_INT(tide_glob_decide(set, path, strlen(path), flags, &winner), 0);
  selected = winner >= 0 && !tide_glob_negated(set, winner);
  tide_glob_free(set);
  return selected;
}

static int match1(const char *pattern, const char *path) {
  const char *patterns[2];
  patterns[0] = pattern;
  patterns[1] = NULL;
  return decide(patterns, path, 0);
}

static void test_syntax(void) {
  static const struct {
    const char *pattern, *path;
    int expected;
  } cases[] = {
    {"a.md", "a.md", 1}, {"a.md", "b.md", 0}, {"a.md", "x/a.md", 0},
    {"*.md", "a.md", 1}, {"*.md", ".md", 1}, {"*.md", "x/a.md", 0},
    {"*.md", "a.mdx", 0}, {"x/*", "x/a", 1}, {"x/*", "x/a/b", 0},
    {"a*", "abc", 1}, {"a*", "ba", 0}, {"a*c", "abbbc", 1},
    {"a*b*c", "aXbYbZc", 1}, {"a*b*c", "aXcYb", 0}, {"*a*a", "aaa", 1},
    {"**/*.md", "a.md", 1}, {"**/*.md", "x/y/a.md", 1},
    {"**/*.md", "x/y/a.txt", 0}, {"docs/**", "docs/a", 1},
    {"docs/**", "docs/x/y/z", 1}, {"docs/**", "docs", 0},
    {"docs/**", "docsx/a", 0}, {"a/**/b", "a/b", 1}, {"a/**/b", "a/x/y/b", 1},
    {"a/**/b", "a/x/y/c", 0}, {"a/**/b", "b", 0}, {"**", "a/b/c", 1},
    {"**/x/**", "x/y", 1}, {"**/x/**", "a/b/x/y/z", 1}, {"**/x/**", "x", 0},
    {"a/**/**/b", "a/b", 1}, {"a**b", "aXYb", 1}, {"a**b", "aX/Yb", 0},
    {"?.md", "a.md", 1}, {"?.md", "ab.md", 0}, {"?.md", "\xc3\xa9.md", 1},
    {"??.md", "\xc3\xa9.md", 0}, {"a?c", "a/c", 0}, {"*?", "\xc3\xa9", 1},
    {"[abc].txt", "b.txt", 1}, {"[abc].txt", "d.txt", 0},
    {"[a-c]x", "cx", 1}, {"[a-c]x", "dx", 0}, {"[!a-c]x", "dx", 1},
    {"[!a-c]x", "ax", 0}, {"[^a]x", "bx", 1}, {"[]]", "]", 1},
    {"[]a]", "a", 1}, {"[a-]", "-", 1}, {"[\\]]", "]", 1},
    {"[\xc3\xa9]", "\xc3\xa9", 1}, {"[\xc3\xa0-\xc3\xbf]", "\xc3\xa9", 1},
    {"[!\xc3\xa9]", "\xc3\xa9", 0}, {"[!a]", "\xc3\xa9", 1},
    {"\\*.md", "*.md", 1}, {"\\*.md", "a.md", 0}, {"a\\?b", "a?b", 1},
    {"a\\?b", "axb", 0}, {"\\[a]", "[a]", 1}, {"/a.md", "a.md", 1},
    {"./a.md", "a.md", 1}, {"a//b", "a/b", 1}, {"A.md", "a.md", 0},
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int got = match1(cases[i].pattern, cases[i].path);
    if (got != cases[i].expected)
      fprintf(stderr, "  \"%s\" on \"%s\": %d, expected %d\n",
              cases[i].pattern, cases[i].path, got, cases[i].expected);
    CHECK_EQ_INT(got, cases[i].expected);
  }
}

static void test_last_match_wins(void) {
  const char *logs[] = {"*.log", "!keep.log", NULL};
  const char *rev[] = {"!keep.log", "*.log", NULL};
  const char *build[] = {"build", "!build/**/*.md", NULL};
  CHECK_EQ_INT(decide(logs, "a.log", 0), 1);
  CHECK_EQ_INT(decide(logs, "keep.log", 0), 0);
  CHECK_EQ_INT(decide(rev, "keep.log", 0), 1);
  CHECK_EQ_INT(decide(logs, "a.txt", 0), 0);
  /* A directory's match applies under it only with TIDE_GLOB_PARENTS. */
  CHECK_EQ_INT(decide(build, "build/x.c", TIDE_GLOB_PARENTS), 1);
  CHECK_EQ_INT(decide(build, "build/x.c", 0), 0);
  CHECK_EQ_INT(decide(build, "build/a/x.md", TIDE_GLOB_PARENTS), 0);
  CHECK_EQ_INT(decide(build, "build", TIDE_GLOB_DIR), 1);
}

static void test_dir_only(void) {
  const char *pats[] = {"out/", NULL};
  CHECK_EQ_INT(decide(pats, "out", 0), 0);
  CHECK_EQ_INT(decide(pats, "out", TIDE_GLOB_DIR), 1);
  CHECK_EQ_INT(decide(pats, "out/a", TIDE_GLOB_PARENTS), 1);
  CHECK_EQ_INT(decide(pats, "out/a", 0), 0);
}

static tide_GlobSet *compile(const char *const *patterns, size_t n) {
  tide_GlobSet *set = NULL;
  char err[256];
  if (tide_glob_new(&set, patterns, n, NULL, NULL, err, sizeof err) != 0)
    fprintf(stderr, "  compile: %s\n", err);
  CHECK(set != NULL);
  return set;
}

static void test_could_match_under(void) {
  const char *inc[] = {"docs/**/*.md"};
  const char *exc[] = {"node_modules", "build", "!build/keep/**"};
  tide_GlobSet *i = compile(inc, 1), *e = compile(exc, 3);
  uint64_t root[3], sub[3], sub2[3];
  if (!i || !e) return;
  tide_glob_start(i, root);
  CHECK_EQ_INT(tide_glob_enter(i, root, "src", 3, sub), -1);
  CHECK_EQ_INT(tide_glob_could_match_under(i, sub, -1, 0), 0);
  CHECK_EQ_INT(tide_glob_enter(i, root, "docs", 4, sub), -1);
  CHECK_EQ_INT(tide_glob_could_match_under(i, sub, -1, 0), 1);
  CHECK_EQ_INT(tide_glob_enter(i, sub, "x", 1, sub2), -1);
  CHECK_EQ_INT(tide_glob_match_file(i, sub2, "a.md", 4, -1), 0);
  CHECK_EQ_INT(tide_glob_match_file(i, sub2, "a.txt", 5, -1), -1);
  tide_glob_start(e, root);
  CHECK_EQ_INT(tide_glob_enter(e, root, "node_modules", 12, sub), 0);
  CHECK_EQ_INT(tide_glob_could_match_under(e, sub, 0, 1), 0);
  CHECK_EQ_INT(tide_glob_enter(e, root, "build", 5, sub), 1);
  CHECK_EQ_INT(tide_glob_could_match_under(e, sub, 1, 1), 1);
  CHECK_EQ_INT(tide_glob_enter(e, sub, "other", 5, sub2), -1);
  CHECK_EQ_INT(tide_glob_could_match_under(e, sub2, 1, 1), 0);
  CHECK_EQ_INT(tide_glob_enter(e, sub, "keep", 4, sub2), -1);
  CHECK_EQ_INT(tide_glob_could_match_under(e, sub2, 1, 1), 1);
  CHECK_EQ_INT(tide_glob_match_file(e, sub2, "x", 1, 1), 2);
  tide_glob_free(i);
  tide_glob_free(e);
}

static void test_errors_name_the_pattern(void) {
  static const struct {
    const char *pattern, *message;
  } cases[] = {
    {"[abc", "bad pattern \"[abc\": unclosed '['"},
    {"a/[b/c]", "bad pattern \"a/[b/c]\": unclosed '['"},
    {"[]", "bad pattern \"[]\": unclosed '['"},
    {"[z-a]", "bad pattern \"[z-a]\": reversed range in '[...]'"},
    {"a\\", "bad pattern \"a\\\": '\\' at the end"},
    {"", "bad pattern \"\": empty pattern"},
    {"!", "bad pattern \"!\": empty pattern"},
    {"a/../b", "bad pattern \"a/../b\": '.' and '..' segments never match"},
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *patterns[2];
    tide_GlobSet *set = (tide_GlobSet *)&set;
    char err[256] = "";
    patterns[0] = "ok/*.md";
    patterns[1] = cases[i].pattern;
    CHECK_EQ_INT(tide_glob_new(&set, patterns, 2, NULL, NULL, err, sizeof err),
                 TIDE_EINVAL);
    CHECK(set == NULL);
    if (strcmp(err, cases[i].message) != 0)
      fprintf(stderr, "  got: %s\n", err);
    CHECK(strcmp(err, cases[i].message) == 0);
  }
}

static void test_too_many_segments(void) {
  char pattern[200];
  const char *patterns[1];
  tide_GlobSet *set;
  char err[256];
  int i;
  for (i = 0; i < 64; i++) memcpy(pattern + 2 * i, "a/", 2);
  pattern[127] = '\0';
  patterns[0] = pattern;
  CHECK_EQ_INT(tide_glob_new(&set, patterns, 1, NULL, NULL, err, sizeof err),
               TIDE_EINVAL);
  CHECK_STR_CONTAINS(err, "too many segments");
  pattern[2 * 63 - 1] = '\0';
  CHECK_EQ_INT(tide_glob_new(&set, patterns, 1, NULL, NULL, err, sizeof err),
               0);
  tide_glob_free(set);
}

/* Many patterns: the whole-path decision allocates its states. */
static void test_many_patterns(void) {
  const char *patterns[40];
  char text[40][16];
  tide_GlobSet *set;
  char err[256];
  int i, winner = 0;
  for (i = 0; i < 40; i++) {
    snprintf(text[i], sizeof text[i], "d%d/**", i);
    patterns[i] = text[i];
  }
  CHECK_EQ_INT(tide_glob_new(&set, patterns, 40, NULL, NULL, err, sizeof err),
               0);
  CHECK_EQ_INT(tide_glob_decide(set, "d37/x/y", 7, 0, &winner), 0);
  CHECK_EQ_INT(winner, 37);
  CHECK_EQ_INT(tide_glob_decide(set, "d40/x", 5, 0, &winner), 0);
  CHECK_EQ_INT(winner, -1);
  tide_glob_free(set);
  tide_glob_free(NULL);
}

/* Matching a file from its directory's state costs tens of nanoseconds, so
** globs never matter next to the one fstatat per file. */
static void test_file_match_is_fast(void) {
  const char *patterns[] = {"**/*.md", "docs/[a-c]*.txt"};
  tide_GlobSet *set = compile(patterns, 2);
  uint64_t st[2], sub[2];
  struct timespec t0, t1;
  long hits = 0, i;
  double ns;
  if (!set) return;
  tide_glob_start(set, st);
  tide_glob_enter(set, st, "docs", 4, sub);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (i = 0; i < 1000000; i++) {
    hits += tide_glob_match_file(set, sub, i & 1 ? "file-0001.md" : "b.txt",
                                 i & 1 ? 12 : 5, -1) >= 0;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e6;
  CHECK_EQ_INT(hits, 1000000);
  if (ns > 200) fprintf(stderr, "  %.1f ns per file\n", ns);
  CHECK(ns < 200);
  tide_glob_free(set);
}

int main(void) {
  static const CheckTest tests[] = {
    {"syntax", test_syntax},
    {"last match wins", test_last_match_wins},
    {"directory-only patterns", test_dir_only},
    {"could match under", test_could_match_under},
    {"errors name the pattern", test_errors_name_the_pattern},
    {"too many segments", test_too_many_segments},
    {"many patterns", test_many_patterns},
    {"file match is fast", test_file_match_is_fast},
    {NULL, NULL},
  };
  return check_run("glob", tests);
}
