/*
** Fuzz target for the canonical decoder: any input must be rejected with an
** error or decoded; whatever is decoded must encode back to the very same
** bytes (the decoder accepts only canonical encodings).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "cbor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = luaL_newstate();
  tide_CborEnc enc;
  char err[256];
  if (L == NULL) return 0;
  tide_cbor_enc_init(&enc, NULL, NULL);
  if (tide_cbor_decode(L, data, size, err, sizeof err) == 0) {
    if (tide_cbor_encode(&enc, L, -1) != 0) {
      fprintf(stderr, "decoded value does not encode: %s\n", enc.err);
      abort();
    }
    if (enc.out.len != size || memcmp(enc.out.data, data, size) != 0) {
      fprintf(stderr, "re-encoding differs from the accepted input\n");
      abort();
    }
    lua_pop(L, 1);
  } else if (err[0] == '\0') {
    fprintf(stderr, "rejected without a message\n");
    abort();
  }
  if (lua_gettop(L) != 0) {
    fprintf(stderr, "decoder left %d values on the stack\n", lua_gettop(L));
    abort();
  }
  tide_cbor_enc_close(&enc);
  lua_close(L);
  return 0;
}
