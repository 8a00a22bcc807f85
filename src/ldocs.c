/*
** The Lua binding of the document readers: gzip (gunzip.h) and HTML
** (html_text.h). tide.fs and tide.text shape the API over them.
**
** gunzip(bytes, name [, limit]) -> bytes | nil, message
**   The decompressed content of gzip data; limit caps its size (default
**   TIDE_GUNZIP_LIMIT, 1 GiB). Data that is not gzip, corrupt, truncated
**   or over the limit returns nil and "NAME: why".
** is_gzip(bytes) -> whether bytes start with the gzip magic number
** html_text(html) -> text, title | nil, message
**   The Markdown-ish text of an HTML document and its title (nil when it
**   has none); nil and a message for a document over the size limit.
** gunzip_limit, html_max_depth: the default limits, for messages.
**
** Misuse raises (arguments of the wrong type, a limit below 0); out of
** memory raises, as Lua's own allocations do. The buffers live in a
** userdata whose __gc closes them, so that a raise cannot leak them.
*/
#include <lauxlib.h>
#include <lua.h>

#include "buf.h"
#include "gunzip.h"
#include "html_depth.h"
#include "html_text.h"
#include "lcore.h"
#include "tide.h"

#define BUFS_MT "tide.docbufs"

typedef struct {
  tide_Buf a, b;
} Bufs;

static int bufs_gc(lua_State *L) {
  Bufs *bufs = luaL_checkudata(L, 1, BUFS_MT);
  tide_buf_close(&bufs->a);
  tide_buf_close(&bufs->b);
  return 0;
}

/* Two empty buffers on the host's allocator, in a new userdata.
** [-0, +1, m] */
static Bufs *push_bufs(lua_State *L) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Bufs *bufs = lua_newuserdatauv(L, sizeof *bufs, 0);
  tide_buf_init(&bufs->a, alloc, ud);
  tide_buf_init(&bufs->b, alloc, ud);
  luaL_setmetatable(L, BUFS_MT);
  return bufs;
}

/* gunzip(bytes, name [, limit]) */
static int docs_gunzip(lua_State *L) {
  size_t len;
  const char *in = luaL_checklstring(L, 1, &len);
  const char *name = luaL_checkstring(L, 2);
  lua_Integer limit = luaL_optinteger(L, 3, (lua_Integer)TIDE_GUNZIP_LIMIT);
  char err[256];
  Bufs *bufs;
  int rc;
  luaL_argcheck(L, limit >= 0, 3, "must not be negative");
  bufs = push_bufs(L);
  rc = tide_gunzip((const uint8_t *)in, len, (size_t)limit, &bufs->a, err,
                   sizeof err);
  if (rc == TIDE_ENOMEM) return luaL_error(L, "%s: %s", name, err);
  if (rc != 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", name, err);
    return 2;
  }
  lua_pushlstring(L, (const char *)bufs->a.data, bufs->a.len);
  tide_buf_close(&bufs->a);
  return 1;
}

/* is_gzip(bytes) */
static int docs_is_gzip(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_pushboolean(L, tide_gunzip_is_gzip((const uint8_t *)s, len));
  return 1;
}

/* html_text(html) */
static int docs_html_text(lua_State *L) {
  size_t len;
  const char *html = luaL_checklstring(L, 1, &len);
  char err[256];
  Bufs *bufs = push_bufs(L);
  int rc = tide_html_text(html, len, &bufs->a, &bufs->b, err, sizeof err);
  if (rc == TIDE_ENOMEM) return luaL_error(L, "%s", err);
  if (rc != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushlstring(L, (const char *)bufs->a.data, bufs->a.len);
  if (bufs->b.len > 0)
    lua_pushlstring(L, (const char *)bufs->b.data, bufs->b.len);
  else
    lua_pushnil(L);
  tide_buf_close(&bufs->a);
  tide_buf_close(&bufs->b);
  return 2;
}

void tide_ldocs_open(lua_State *L) {
  static const luaL_Reg functions[] = {
    {"gunzip", docs_gunzip},
    {"is_gzip", docs_is_gzip},
    {"html_text", docs_html_text},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, BUFS_MT)) {
    lua_pushcfunction(L, bufs_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, functions, 0);
  lua_pushinteger(L, (lua_Integer)TIDE_GUNZIP_LIMIT);
  lua_setfield(L, -2, "gunzip_limit");
  lua_pushinteger(L, TIDE_HTML_MAX_DEPTH);
  lua_setfield(L, -2, "html_max_depth");
}
