/*
** JSON Lines in C, for the tide.json.lines source: a file read one line at
** a time, and a line read the way json.lua reads it (lua-cjson's decoding,
** then json.lua's normalize) straight into the canonical encoding of the
** object it holds (cbor.h) and into its key, without making Lua values.
** mount_each fingerprints that encoding to carry an unchanged line over
** (index_each.h); only the other lines are decoded in Lua.
**
** The reader takes a line only when it is sure to give the bytes the Lua
** path gives: one JSON object in strict RFC 8259 syntax (lua-cjson's
** whitespace: space, tab, CR, LF) with no duplicate key in any object, no
** null inside an array, no NUL byte, nesting at most TIDE_JSONL_MAX_DEPTH,
** numbers strtod reads exactly (no overflow or underflow), and a key field
** that is a non-empty string or an integral number. Any other line is
** "other" (0): the caller hands it to json.lua, whose reading makes the
** value or the error message. So the reader may refuse what Lua accepts,
** never the reverse.
**
** What the Lua path makes, and so what the encoding holds:
** - numbers: lua-cjson reads each as a float; normalize makes a float
**   with an integral value within 2^53 an integer (-0 is 0);
** - strings: the bytes after unescaping, \u escapes as UTF-8 (a surrogate
**   pair as one code point); text when valid UTF-8, else bytes;
** - an object: a table with its non-null fields, a map sorted by encoded
**   key (an object with none is the empty table, an empty array);
** - an array: a table with keys 1..n, an array.
*/
#ifndef TIDE_JSONL_H
#define TIDE_JSONL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define TIDE_JSONL_MAX_DEPTH 64

/* ---- Reading a file one line at a time ---- */

typedef struct tide_JsonlFile {
  int fd;           /* owned; -1 when closed */
  char *path;       /* owned: for messages */
  size_t path_size;
  tide_Alloc alloc;
  void *ud;
  tide_Buf buf;     /* owned: bytes read, the lines not yet handed out */
  size_t start;     /* where the next line starts in buf */
  size_t scanned;   /* bytes after start known to hold no newline */
  int eof;
  int bom_checked;  /* a UTF-8 byte order mark at the start is skipped */
  char err[512];
} tide_JsonlFile;

/* Opens path for reading. TIDE_ENOTFOUND or TIDE_EIO with "PATH: reason"
** in f->err (the words tide_file_read uses). f must be closed even when
** this fails. */
int tide_jsonl_open(tide_JsonlFile *f, const char *path, tide_Alloc alloc,
                    void *ud);

/* The next line, without its "\n" (a "\r" before it stays): 1 with *line
** and *len, borrowed until the next call; 0 at the end of the file;
** TIDE_EIO with the message in f->err, or TIDE_ENOMEM. As in json.lua, a
** last line without "\n" counts and an empty file has no line. */
int tide_jsonl_next(tide_JsonlFile *f, const char **line, size_t *len);

/* Closes the file and frees the buffer; accepts a closed file. */
void tide_jsonl_close(tide_JsonlFile *f);

/* ---- Reading a line ---- */

typedef struct tide_JsonlValue {
  tide_Buf out;      /* owned: the object's canonical encoding */
  tide_Buf scratch;  /* owned: map entries while an object is sorted */
  tide_Buf str;      /* owned: the string being unescaped */
  tide_Buf key;      /* owned: the key text */
} tide_JsonlValue;

void tide_jsonl_value_init(tide_JsonlValue *v, tide_Alloc alloc, void *ud);
void tide_jsonl_value_close(tide_JsonlValue *v);

/* Reads the len bytes of line as the object of a JSON Lines source keyed
** by the field named field (field_len bytes): 1 with the encoding in
** v->out and the key text in v->key; 0 for a line the reader does not take
** (see above); TIDE_ENOMEM. */
int tide_jsonl_read(tide_JsonlValue *v, const char *line, size_t len,
                    const char *field, size_t field_len);

#endif
