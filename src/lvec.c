/*
** Lua binding of the vector helpers the model code needs in C:
**
** embedding_answer(body) -> { vector, ... } | nil, message
**   The vectors of an embeddings endpoint's answer (embed_answer.h: the
**   OpenAI-compatible and Ollama shapes, strict JSON), each a list of
**   numbers rounded to float32, in the answer's index order; nil and the
**   reader's message when the body is not such an answer.
*/
#include <lauxlib.h>
#include <lua.h>

#include "embed_answer.h"
#include "lcore.h"

#define ANSWER_TYPE "tide.embed_answer"

static int answer_gc(lua_State *L) {
  tide_embed_answer_close(luaL_checkudata(L, 1, ANSWER_TYPE));
  return 0;
}

/* embedding_answer(body): the reader's buffers live in a userdata, so
** that a raise while the lists are made frees them (its __gc). */
static int embedding_answer(lua_State *L) {
  size_t len, i, j;
  const char *body = luaL_checklstring(L, 1, &len);
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  tide_EmbedAnswer *a = lua_newuserdatauv(L, sizeof *a, 0);
  const float *f;
  int rc;
  tide_embed_answer_init(a, alloc, ud);
  luaL_setmetatable(L, ANSWER_TYPE);
  rc = tide_embed_answer_read(a, body, len);
  if (rc == TIDE_ENOMEM) return luaL_error(L, "not enough memory");
  if (rc != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, a->err);
    return 2;
  }
  f = (const float *)a->floats.data;
  lua_createtable(L, (int)a->count, 0);
  for (i = 0; i < a->count; i++) {
    lua_createtable(L, (int)a->dims, 0);
    for (j = 0; j < a->dims; j++) {
      lua_pushnumber(L, (lua_Number)*f++);
      lua_rawseti(L, -2, (lua_Integer)j + 1);
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

void tide_lvec_open(lua_State *L) {
  if (luaL_newmetatable(L, ANSWER_TYPE)) {
    lua_pushcfunction(L, answer_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, embedding_answer);
  lua_setfield(L, -2, "embedding_answer");
}
