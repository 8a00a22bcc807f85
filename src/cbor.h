/*
** Canonical values: Lua values as deterministic CBOR (RFC 8949, 4.2.1).
**
** One encoding serves fingerprints, memo storage and crossing between Lua
** states. Integers and floats stay distinct; floats take their shortest
** exact form, NaN is always f97e00 and -0.0 keeps its sign; strings that are
** valid UTF-8 are text strings, other strings are byte strings; tables whose
** keys are exactly 1..n (and the empty table) are arrays, other tables are
** maps with keys sorted by their encoded bytes; a record, or a value whose
** metatable has __tide_key, is tag 27 around [type name, fields or key].
** The decoder accepts exactly what the encoder produces, so decoding then
** encoding gives back the input bytes.
*/
#ifndef TIDE_CBOR_H
#define TIDE_CBOR_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "buf.h"

#define TIDE_CBOR_MAX_DEPTH 128
#define TIDE_CBOR_MAX_SIZE ((size_t)1 << 30)
#define TIDE_CBOR_TAG_TYPED 27

typedef struct tide_CborEnc {
  tide_Buf out;        /* owned: the encoding so far */
  tide_Buf scratch;    /* owned: map entries and bodies while sorting */
  const char *root;    /* borrowed: the value's name in error messages */
  int depth;
  const void *tables[TIDE_CBOR_MAX_DEPTH + 1]; /* tables on the path */
  struct {
    int key_idx;       /* stack index of a map key, or 0 for an array */
    lua_Integer index; /* array index when key_idx is 0 */
  } path[TIDE_CBOR_MAX_DEPTH + 1];
  char err[256];
} tide_CborEnc;

/* Whether a number whose value as a float is x may be a Lua integer: only
** an integral float can (any beyond +-2^63 is). A test before the call
** lua_isinteger, which the floats of a vector, rarely integral, skip. */
static inline int tide_may_be_integer(lua_Number x) {
  return !(x > -0x1p63 && x < 0x1p63) || (lua_Number)(lua_Integer)x == x;
}

void tide_cbor_enc_init(tide_CborEnc *e, tide_Alloc alloc, void *ud);
void tide_cbor_enc_close(tide_CborEnc *e);

/* Appends the encoding of the value at idx to e->out. On failure returns
** TIDE_EENCODE or TIDE_ENOMEM, with the message in e->err naming the path
** inside the value ("value.sections[2].fn: cannot encode a function").
** Runs __tide_key metamethods in protected mode. [-0, +0, -] */
int tide_cbor_encode(tide_CborEnc *e, lua_State *L, int idx);

/* Decodes exactly one value from data and pushes it. Malformed, truncated,
** oversized or non-canonical input returns TIDE_EDECODE with a message in
** err, pushing nothing. [-0, +(0|1), m] */
int tide_cbor_decode(lua_State *L, const uint8_t *data, size_t len,
                     char *err, size_t errlen);

/* Appends an item head (major type 0-7, shortest argument), a Lua string
** as the encoder writes it (text when valid UTF-8, else bytes), or a Lua
** float (its shortest exact form): for C code that must produce the same
** bytes as the encoder. */
int tide_cbor_put_head(tide_Buf *b, int major, uint64_t v);
int tide_cbor_put_string(tide_Buf *b, const void *s, size_t len);
int tide_cbor_put_float(tide_Buf *b, double d);

/* A map entry laid out in a buffer: its key at off (klen bytes), then its
** value; len bytes in all. */
typedef struct tide_CborEntry {
  size_t off, klen, len;
} tide_CborEntry;

/* Sorts n map entries whose keys lie at base in the canonical order
** (bytewise, shorter first: RFC 8949 section 4.2.1), stably; tmp is room
** for n entries. For C code that lays maps out as the encoder does. */
void tide_cbor_sort_entries(const uint8_t *base, tide_CborEntry *v,
                            tide_CborEntry *tmp, size_t n);

/* Pushes the metatable shared by records of type `name`, creating it with
** __tide_record = name when missing. [-0, +1, m] */
void tide_cbor_record_metatable(lua_State *L, const char *name);

#endif
