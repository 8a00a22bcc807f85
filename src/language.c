/*
** Languages. The built-in table: each language lists its extensions,
** whole file names, separator levels (coarse to fine, in the format of
** tide_SplitEntry), comment prefixes (comment and attribute lines stay
** with the definition below them) and fences. And the compiled form of
** a separator set: one block, patterns grouped by first byte.
*/
#include <stdint.h>
#include <string.h>

#include "language.h"

/* A NULL-terminated list of strings, and a NULL-terminated list of them. */
#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})
#define LEVELS(...) ((const char *const *const[]){__VA_ARGS__, NULL})

/* Blank lines, placed explicitly among a language's levels. */
#define BLANK LIST("\n\n")

#define C_TYPES                                                           \
  "^static ", "^extern ", "^inline ", "^int ", "^void ", "^char ",        \
    "^unsigned ", "^signed ", "^long ", "^short ", "^float ",             \
    "^double ", "^bool ", "^_Bool ", "^const ", "^struct ", "^union ",    \
    "^enum ", "^typedef ", "^size_t ", "^ssize_t ", "^uint8_t ",          \
    "^uint16_t ", "^uint32_t ", "^uint64_t ", "^int8_t ", "^int16_t ",    \
    "^int32_t ", "^int64_t ", "^FILE "
#define C_PREPROCESSOR                                                    \
  "^#if", "^#define ", "^#include ", "^#undef ", "^#pragma ", "^#error"
#define C_COMMENTS LIST("/*", "*", "//")

#define JS_DEFINITIONS                                                    \
  "^function ", "^async function ", "^export ", "^class ",                \
    "^module.exports"

static const tide_Language languages[] = {
  {"markdown", LIST("md", "mdx", "markdown", "mkd", "mdown", "mkdn", "mdwn"),
   NULL,
   LEVELS(LIST("^# "), LIST("^## "), LIST("^### "), LIST("^#### "),
          LIST("^##### "), LIST("^###### "), LIST("^```", "^~~~"), BLANK,
          LIST("^- ", "^* ", "^+ ", "^1. ", "^2. ", "^3. ", "^4. ", "^5. ",
               "^6. ", "^7. ", "^8. ", "^9. "),
          LIST("^  - ", "^  * ", "^  + ", "^    - ", "^    * ",
               "^    + ")),
   NULL, LIST("```", "~~~")},
  {"text", LIST("txt", "text"), LIST("LICENSE", "COPYING", "AUTHORS"), NULL,
   NULL, NULL},
  {"c", LIST("c", "h"), NULL,
   LEVELS(LIST(C_TYPES), LIST(C_PREPROCESSOR)), C_COMMENTS, NULL},
  {"cpp",
   LIST("cpp", "cc", "cxx", "c++", "hpp", "hh", "hxx", "h++", "ipp", "tpp",
        "ino"),
   NULL,
   LEVELS(LIST("^namespace ", "^class ", "^template", "^using ", "^auto ",
               "^virtual ", "^constexpr ", "^explicit ", "^std::",
               C_TYPES),
          LIST(C_PREPROCESSOR)),
   C_COMMENTS, NULL},
  {"lua", LIST("lua", "rockspec"), LIST(".luacheckrc"),
   LEVELS(LIST("^function ", "^local function "),
          LIST("^local ", "^return ", "^if ", "^for ", "^while ")),
   LIST("--"), NULL},
  {"python", LIST("py", "pyi", "pyw"), LIST("SConstruct", "SConscript"),
   LEVELS(LIST("^class ", "^def ", "^async def "),
          LIST("^    def ", "^    async def ", "^if __name__"),
          LIST("^if ", "^for ", "^while ", "^try:", "^with ")),
   LIST("#", "@"), NULL},
  {"javascript", LIST("js", "mjs", "cjs", "jsx"), NULL,
   LEVELS(LIST(JS_DEFINITIONS), LIST("^const ", "^let ", "^var ")),
   LIST("//", "/*", "*", "@"), NULL},
  {"typescript", LIST("ts", "tsx", "mts", "cts"), NULL,
   LEVELS(LIST(JS_DEFINITIONS, "^interface ", "^type ", "^enum ",
               "^namespace ", "^declare ", "^abstract class "),
          LIST("^const ", "^let ", "^var ")),
   LIST("//", "/*", "*", "@"), NULL},
  {"go", LIST("go"), NULL,
   LEVELS(LIST("^func ", "^type "),
          LIST("^var ", "^const ", "^import", "^package ")),
   LIST("//", "/*", "*"), NULL},
  {"rust", LIST("rs"), NULL,
   LEVELS(LIST("^fn ", "^pub fn ", "^pub(crate) fn ", "^async fn ",
               "^pub async fn ", "^const fn ", "^pub const fn ",
               "^unsafe fn ", "^pub unsafe fn ", "^impl ", "^impl<",
               "^unsafe impl", "^struct ", "^pub struct ",
               "^pub(crate) struct ", "^enum ", "^pub enum ",
               "^pub(crate) enum ", "^trait ", "^pub trait ", "^mod ",
               "^pub mod ", "^macro_rules!", "^type ", "^pub type "),
          LIST("^    fn ", "^    pub fn ", "^    pub(crate) fn ",
               "^    async fn ", "^    pub async fn ", "^    const fn ",
               "^    unsafe fn "),
          LIST("^const ", "^pub const ", "^static ", "^pub static ")),
   LIST("//", "/*", "*", "#[", "#!["), NULL},
  {"java", LIST("java"), NULL,
   LEVELS(LIST("^public ", "^class ", "^interface ", "^enum ", "^record ",
               "^abstract ", "^final ", "^@interface "),
          LIST("^    public ", "^    private ", "^    protected ",
               "^    static ", "^    abstract ", "^    final ",
               "^    void "),
          LIST("^package ")),
   LIST("//", "/*", "*", "@"), NULL},
  {"kotlin", LIST("kt", "kts"), NULL,
   LEVELS(LIST("^fun ", "^class ", "^object ", "^interface ",
               "^data class ", "^sealed ", "^enum class ", "^abstract ",
               "^open ", "^private ", "^internal ", "^public ",
               "^suspend fun ", "^inline fun "),
          LIST("^    fun ", "^    override ", "^    private ",
               "^    suspend ", "^    public ", "^    internal ")),
   LIST("//", "/*", "*", "@"), NULL},
  {"swift", LIST("swift"), NULL,
   LEVELS(LIST("^func ", "^class ", "^struct ", "^enum ", "^protocol ",
               "^extension ", "^public ", "^private ", "^internal ",
               "^final ", "^actor "),
          LIST("^    func ", "^    public ", "^    private ", "^    init",
               "^    static ", "^    override ")),
   LIST("//", "/*", "*", "@"), NULL},
  {"scala", LIST("scala", "sc"), NULL,
   LEVELS(LIST("^object ", "^class ", "^trait ", "^case class ",
               "^sealed ", "^abstract ", "^final ", "^def ", "^enum ",
               "^given "),
          LIST("^  def ", "^  override ", "^  private ", "^  val ",
               "^  lazy val ")),
   LIST("//", "/*", "*", "@"), NULL},
  {"csharp", LIST("cs", "csx"), NULL,
   LEVELS(LIST("^namespace ", "^public ", "^internal ", "^class ",
               "^static ", "^sealed ", "^abstract ", "^interface ",
               "^enum ", "^struct ", "^record "),
          LIST("^    public ", "^    private ", "^    protected ",
               "^    internal ", "^    static ", "^    class ",
               "^    interface ", "^    enum ", "^    struct "),
          LIST("^        public ", "^        private ",
               "^        protected ", "^        internal ",
               "^        static ")),
   LIST("//", "/*", "*", "["), NULL},
  {"php", LIST("php", "phtml"), NULL,
   LEVELS(LIST("^function ", "^class ", "^interface ", "^trait ",
               "^abstract ", "^final ", "^namespace ", "^enum "),
          LIST("^    public ", "^    private ", "^    protected ",
               "^    function ", "^    static ")),
   LIST("//", "/*", "*", "#"), NULL},
  {"ruby", LIST("rb", "rake", "gemspec"), LIST("Rakefile", "Gemfile"),
   LEVELS(LIST("^class ", "^module ", "^def "),
          LIST("^  def ", "^  class ", "^  module ", "^  private",
               "^  protected"),
          LIST("^    def ")),
   LIST("#"), NULL},
  {"shell", LIST("sh", "bash", "zsh", "ksh"),
   LIST(".bashrc", ".bash_profile", ".zshrc", ".profile"),
   LEVELS(LIST("^function "),
          LIST("^if ", "^for ", "^while ", "^case ", "^until ",
               "^export ")),
   LIST("#"), NULL},
  {"html", LIST("html", "htm", "xhtml"), NULL,
   LEVELS(LIST("<head", "<body", "<main", "<header", "<footer", "<nav",
               "<article", "<section", "<h1"),
          LIST("<h2"), LIST("<h3", "<h4", "<h5", "<h6"),
          LIST("<div", "<table", "<ul", "<ol", "<pre", "<form", "<script",
               "<style", "<blockquote", "<figure", "<p>", "<p "),
          LIST("<li", "<tr", "<dt")),
   LIST("<!--"), NULL},
  {"xml",
   LIST("xml", "xsd", "xsl", "xslt", "svg", "plist", "csproj", "rss",
        "atom"),
   NULL,
   LEVELS(LIST("^<"), LIST("^  <", "^\t<"), LIST("^    <", "^\t\t<"),
          LIST("^      <", "^\t\t\t<"), LIST("^        <", "^\t\t\t\t<"),
          BLANK,
          LIST("^</", "^  </", "^\t</", "^    </", "^\t\t</", "^      </",
               "^\t\t\t</", "^        </", "^\t\t\t\t</")),
   LIST("<!--"), NULL},
  {"json", LIST("json", "jsonc", "json5", "geojson", "ipynb"), NULL,
   LEVELS(LIST("^  \"", "^  {", "^\t\"", "^\t{"),
          LIST("^    \"", "^    {", "^\t\t\"", "^\t\t{"),
          LIST("^      \"", "^      {", "^\t\t\t\"", "^\t\t\t{")),
   NULL, NULL},
  {"yaml", LIST("yaml", "yml"), NULL,
   LEVELS(LIST("^---"), LIST("^- ")), LIST("#"), NULL},
  {"sql", LIST("sql"), NULL,
   LEVELS(LIST("^CREATE ", "^create ", "^ALTER ", "^alter ", "^DROP ",
               "^drop ", "^INSERT ", "^insert ", "^SELECT ", "^select ",
               "^WITH ", "^with ", "^UPDATE ", "^update ", "^DELETE ",
               "^delete ", "^BEGIN", "^begin", "^COMMIT", "^commit",
               "^GRANT ", "^grant ")),
   LIST("--", "/*"), NULL},
  {"toml", LIST("toml"), LIST("Cargo.lock", "Pipfile"),
   LEVELS(LIST("^[")), LIST("#"), NULL},
  {"ini", LIST("ini", "cfg", "conf"), LIST(".editorconfig", ".gitconfig"),
   LEVELS(LIST("^[")), LIST("#", ";"), NULL},
  {"css", LIST("css", "scss", "less"), NULL,
   LEVELS(LIST("^@media", "^@supports", "^@font-face", "^@keyframes",
               "^@layer", "^@import")),
   LIST("/*", "*", "//"), NULL},
  {"make", LIST("mk", "mak"), LIST("Makefile", "makefile", "GNUmakefile"),
   LEVELS(LIST("^define ", "^ifeq", "^ifneq", "^ifdef", "^ifndef",
               "^include ", "^.PHONY")),
   LIST("#"), NULL},
  {"dockerfile", LIST("dockerfile"), LIST("Dockerfile", "Containerfile"),
   LEVELS(LIST("^FROM ", "^from "),
          LIST("^RUN ", "^COPY ", "^ADD ", "^ENV ", "^ARG ", "^WORKDIR ",
               "^CMD ", "^ENTRYPOINT ", "^EXPOSE ", "^LABEL ", "^USER ",
               "^VOLUME ", "^HEALTHCHECK ", "^SHELL ", "^ONBUILD ")),
   LIST("#"), NULL},
  {"cmake", LIST("cmake"), LIST("CMakeLists.txt"),
   LEVELS(LIST("^function(", "^macro(", "^project(", "^if(", "^foreach(",
               "^add_executable(", "^add_library(", "^add_subdirectory(",
               "^install(", "^option(", "^include(", "^find_package("),
          LIST("^set(", "^target_", "^add_")),
   LIST("#"), NULL},
  {"latex", LIST("tex", "sty", "ltx"), NULL,
   LEVELS(LIST("^\\part", "^\\chapter"), LIST("^\\section"),
          LIST("^\\subsection"), LIST("^\\subsubsection", "^\\paragraph"),
          LIST("^\\begin{")),
   LIST("%"), NULL},
  {"haskell", LIST("hs", "lhs"), NULL,
   LEVELS(LIST("^module ", "^data ", "^newtype ", "^type ", "^class ",
               "^instance ")),
   LIST("--", "{-"), NULL},
  {"elixir", LIST("ex", "exs"), NULL,
   LEVELS(LIST("^defmodule "),
          LIST("^  def ", "^  defp ", "^  defmacro ", "^  defstruct")),
   LIST("#", "@"), NULL},
  {"perl", LIST("pl", "pm"), NULL, LEVELS(LIST("^sub ", "^package ")),
   LIST("#"), NULL},
  {"r", LIST("r"), NULL, NULL, LIST("#"), NULL},
  {"dart", LIST("dart"), NULL,
   LEVELS(LIST("^class ", "^abstract ", "^enum ", "^mixin ",
               "^extension ", "^void ", "^Future", "^final ", "^const ",
               "^typedef "),
          LIST("^  void ", "^  Future", "^  static ")),
   LIST("//", "/*", "*", "@"), NULL},
  {"zig", LIST("zig"), NULL,
   LEVELS(LIST("^fn ", "^pub fn ", "^export fn ", "^test ", "^const ",
               "^pub const ", "^var ", "^pub var ")),
   LIST("//"), NULL},
  {"julia", LIST("jl"), NULL,
   LEVELS(LIST("^function ", "^module ", "^struct ", "^mutable struct ",
               "^macro ", "^abstract type ")),
   LIST("#"), NULL},
  {"ocaml", LIST("ml", "mli"), NULL,
   LEVELS(LIST("^let ", "^type ", "^module ", "^exception ", "^class "),
          LIST("^and ")),
   LIST("(*"), NULL},
  {"clojure", LIST("clj", "cljs", "cljc", "edn"), NULL,
   LEVELS(LIST("^(ns ", "^(defn ", "^(defn- ", "^(def ", "^(defmacro ",
               "^(defprotocol ", "^(defrecord ", "^(deftype ",
               "^(defmulti ", "^(defmethod ")),
   LIST(";"), NULL},
  {"erlang", LIST("erl", "hrl"), NULL,
   LEVELS(LIST("^-module", "^-export", "^-spec", "^-record", "^-type")),
   LIST("%"), NULL},
  {"protobuf", LIST("proto"), NULL,
   LEVELS(LIST("^message ", "^service ", "^enum ", "^syntax", "^package "),
          LIST("^  rpc ", "^  message ", "^  enum ")),
   LIST("//"), NULL},
  {"graphql", LIST("graphql", "gql"), NULL,
   LEVELS(LIST("^type ", "^query ", "^mutation ", "^subscription ",
               "^fragment ", "^input ", "^enum ", "^interface ", "^schema",
               "^scalar ", "^union ")),
   LIST("#"), NULL},
};

#define NLANGUAGES (sizeof languages / sizeof languages[0])

const tide_Language *tide_language_at(size_t i) {
  return i < NLANGUAGES ? &languages[i] : NULL;
}

const tide_Language *tide_language_find(const char *name, size_t len) {
  size_t i;
  for (i = 0; i < NLANGUAGES; i++) {
    const char *n = languages[i].name;
    if (strlen(n) == len && memcmp(n, name, len) == 0) return &languages[i];
  }
  return NULL;
}

static char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Whether a (already lower case) equals b without regard to case. */
static int same_name(const char *a, const char *b) {
  for (; *a && *b; a++, b++)
    if (*a != lower(*b)) return 0;
  return *a == *b;
}

int tide_language_key(const char *path, size_t len, char *name, size_t cap,
                      const char **ext) {
  size_t start = len, i, n;
  const char *dot = NULL;
  while (start > 0 && path[start - 1] != '/') start--;
  n = len - start;
  if (n == 0 || n >= cap) return -1;
  for (i = 0; i < n; i++) {
    name[i] = lower(path[start + i]);
    if (name[i] == '.' && i > 0) dot = name + i;
  }
  name[n] = '\0';
  /* A name ending in a dot has no extension either. */
  *ext = (dot && dot[1]) ? dot + 1 : NULL;
  return 0;
}

const tide_Language *tide_language_by_filename(const char *name) {
  size_t i;
  const char *const *p;
  for (i = 0; i < NLANGUAGES; i++)
    for (p = languages[i].filenames; p && *p; p++)
      if (same_name(name, *p)) return &languages[i];
  return NULL;
}

const tide_Language *tide_language_by_extension(const char *ext) {
  size_t i;
  const char *const *p;
  for (i = 0; i < NLANGUAGES; i++)
    for (p = languages[i].extensions; p && *p; p++)
      if (strcmp(ext, *p) == 0) return &languages[i];
  return NULL;
}

/* Appends the strings of a list as entries of one kind and level. */
static size_t add_entries(const char *const *list, int kind, int level,
                          tide_SplitEntry *out, size_t n) {
  for (; list && *list; list++, n++) {
    if (out == NULL) continue;
    out[n].text = *list;
    out[n].len = strlen(*list);
    out[n].kind = kind;
    out[n].level = level;
  }
  return n;
}

size_t tide_language_entries(const tide_Language *lang, tide_SplitEntry *out) {
  size_t n = 0;
  int level;
  const char *const *const *levels = lang->levels;
  for (level = 0; levels && levels[level]; level++)
    n = add_entries(levels[level], TIDE_SPLIT_SEP, level, out, n);
  n = add_entries(lang->comments, TIDE_SPLIT_COMMENT, 0, out, n);
  return add_entries(lang->fences, TIDE_SPLIT_FENCE, 0, out, n);
}

/* ---- Compiled separator sets ------------------------------------ */

/* At most this many entries in one language. */
#define MAXENTRIES 65536

#define ALIGNED(n) \
  (((n) + sizeof(max_align_t) - 1) / sizeof(max_align_t) * \
   sizeof(max_align_t))

static int is_continuation(uint8_t b) { return (b & 0xc0) == 0x80; }

static int is_blank_token(const tide_SplitEntry *e) {
  return e->kind == TIDE_SPLIT_SEP && e->len == 2 && e->text[0] == '\n' &&
         e->text[1] == '\n';
}

/* The pattern text of a separator without its anchor, if any. */
static const char *sep_text(const tide_SplitEntry *e, size_t *len,
                            int *anchored) {
  *anchored = e->kind == TIDE_SPLIT_SEP && e->len > 0 &&
              (e->text[0] == '^' || e->text[0] == '\n');
  *len = e->len - (size_t)*anchored;
  return e->text + *anchored;
}

/* Why an entry is invalid, or NULL. */
static const char *check_entry(const tide_SplitEntry *e) {
  size_t len;
  int anchored;
  const char *text;
  if (e->text == NULL || e->len == 0) return "is empty";
  if (e->len > TIDE_SPLIT_MAXSEP) return "is longer than 255 bytes";
  if (e->kind == TIDE_SPLIT_SEP &&
      (e->level < 0 || e->level >= TIDE_SPLIT_MAXLEVELS))
    return "is at a level beyond the 32nd";
  if (e->kind != TIDE_SPLIT_SEP && e->kind != TIDE_SPLIT_COMMENT &&
      e->kind != TIDE_SPLIT_FENCE)
    return "is of an unknown kind";
  if (is_blank_token(e)) return NULL;
  text = sep_text(e, &len, &anchored);
  if (len == 0) return "is empty after its anchor";
  if (is_continuation((uint8_t)text[0]))
    return "starts with a UTF-8 continuation byte";
  return NULL;
}

const char *tide_splitlang_check(const tide_SplitEntry *entries,
                                 size_t count, size_t *bad) {
  size_t i;
  const char *why;
  *bad = count;
  if (count > MAXENTRIES) return "has too many separators";
  for (i = 0; i < count; i++) {
    if ((why = check_entry(&entries[i])) != NULL) {
      *bad = i;
      return why;
    }
  }
  return NULL;
}

size_t tide_splitlang_size(const tide_SplitEntry *entries, size_t count) {
  size_t i, bad, bytes = 0, npatterns = 0;
  if (tide_splitlang_check(entries, count, &bad) != NULL) return 0;
  for (i = 0; i < count; i++) {
    if (is_blank_token(&entries[i])) continue;
    npatterns++;
    bytes += entries[i].len;
  }
  return ALIGNED(sizeof(tide_SplitLang)) +
         ALIGNED(npatterns * sizeof(tide_SplitPattern)) + bytes;
}

/* Fills one group of patterns (anchored or loose), sorted by first byte
** with a counting sort, and its index. Returns the patterns written. */
static size_t fill_group(tide_SplitPattern *out, uint32_t *at, uint8_t **bytes,
                         const tide_SplitEntry *entries, size_t count,
                         int want_anchored) {
  uint32_t counts[257] = {0};
  size_t i, n = 0, b;
  for (i = 0; i < count; i++) {
    const tide_SplitEntry *e = &entries[i];
    size_t len;
    int anchored;
    const char *text;
    if (e->kind != TIDE_SPLIT_SEP || is_blank_token(e)) continue;
    text = sep_text(e, &len, &anchored);
    if (anchored != want_anchored) continue;
    counts[(uint8_t)text[0] + 1]++;
    n++;
  }
  for (b = 0; b < 256; b++) counts[b + 1] += counts[b];
  memcpy(at, counts, sizeof counts);
  for (i = 0; i < count; i++) {
    const tide_SplitEntry *e = &entries[i];
    size_t len;
    int anchored;
    const char *text;
    tide_SplitPattern *p;
    if (e->kind != TIDE_SPLIT_SEP || is_blank_token(e)) continue;
    text = sep_text(e, &len, &anchored);
    if (anchored != want_anchored) continue;
    p = &out[counts[(uint8_t)text[0]]++];
    memcpy(*bytes, text, len);
    p->text = *bytes;
    p->len = len;
    p->level = e->level;
    *bytes += len;
  }
  return n;
}

/* Fills the comment or fence patterns. */
static size_t fill_kind(tide_SplitPattern *out, uint8_t **bytes,
                        const tide_SplitEntry *entries, size_t count,
                        int kind) {
  size_t i, n = 0;
  for (i = 0; i < count; i++) {
    if (entries[i].kind != kind) continue;
    memcpy(*bytes, entries[i].text, entries[i].len);
    out[n].text = *bytes;
    out[n].len = entries[i].len;
    out[n].level = 0;
    *bytes += entries[i].len;
    n++;
  }
  return n;
}

tide_SplitLang *tide_splitlang_build(void *mem, const tide_SplitEntry *entries,
                                     size_t count) {
  tide_SplitLang *g = mem;
  tide_SplitPattern *patterns;
  uint8_t *bytes;
  size_t i, npatterns = 0;
  int top = -1, blank = -1;
  if (tide_splitlang_size(entries, count) == 0) return NULL;
  for (i = 0; i < count; i++) {
    const tide_SplitEntry *e = &entries[i];
    if (e->kind != TIDE_SPLIT_SEP) {
      npatterns++;
      continue;
    }
    if (e->level > top) top = e->level;
    if (is_blank_token(e)) {
      if (blank < 0 || e->level < blank) blank = e->level;
    } else {
      npatterns++;
    }
  }
  patterns = (tide_SplitPattern *)((char *)mem +
                                   ALIGNED(sizeof(tide_SplitLang)));
  bytes = (uint8_t *)patterns +
          ALIGNED(npatterns * sizeof(tide_SplitPattern));
  /* Without an explicit place, blank lines come after the structure. */
  g->blank = blank >= 0 ? blank : top + 1;
  g->nlevels = (blank >= 0 ? top : top + 1) + 1;
  g->anchored = patterns;
  g->nanchored = fill_group(g->anchored, g->anchored_at, &bytes, entries,
                            count, 1);
  g->loose = g->anchored + g->nanchored;
  g->nloose = fill_group(g->loose, g->loose_at, &bytes, entries, count, 0);
  g->comments = g->loose + g->nloose;
  g->ncomments = fill_kind(g->comments, &bytes, entries, count,
                           TIDE_SPLIT_COMMENT);
  g->fences = g->comments + g->ncomments;
  g->nfences = fill_kind(g->fences, &bytes, entries, count,
                         TIDE_SPLIT_FENCE);
  return g;
}
