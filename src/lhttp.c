/*
** Lua binding of the HTTP client (http.h): core.http_request, which
** tide.http.request is.
**
** http_request{ method, url, headers, body, timeout, connect_timeout,
**               max_size, follow }
**   -> { status, headers, body } | nil, message, kind
**
** Inside a component's task the call suspends the task on the engine's
** scheduler, on the session's client (its connections kept from one call
** to the next); anywhere else it blocks the caller on a loop and a client
** of its own. headers: a table of name = value (a value a string or a
** number; CR and LF refused); the response's header names are lower case
** and repeated ones are joined with ", ". body: a string. timeout and
** connect_timeout: seconds. max_size: bytes (default 64 MiB) the body may
** not go over. follow: follow redirects (default true, up to 10).
**
** A transfer that fails returns nil, a message naming the method and the
** URL without its user, password and query (they may hold a secret), and
** its kind: "timeout", "connect", "reset", "too_large", "cancelled" or
** "error". A response is not a failure, whatever its status. Misuse (an
** option of the wrong type, an unknown option, no url) raises.
**
** http_public_url(url) -> the URL without its user, password, query and
**   fragment, as the messages above show it (for callers that name a URL
**   in their own messages or fingerprints).
*/
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "http.h"
#include "lcore.h"

#define DEFAULT_MAX_SIZE ((size_t)64 << 20)

typedef struct {
  tide_HttpRequest r; /* first: its tide_Wait is the request's */
  lua_Alloc alloc;
  void *ud;
} Request;

static void request_done(tide_HttpRequest *r) { tide_wait_done(&r->w); }

static void request_cancel(tide_Wait *w) {
  tide_http_cancel((tide_HttpRequest *)w);
}

static void request_release(tide_Wait *w) {
  Request *q = (Request *)w;
  tide_http_request_close(&q->r);
  q->alloc(q->ud, q, sizeof *q, 0);
}

static const char *const options[] = {
  "method", "url", "headers", "body", "timeout", "connect_timeout",
  "max_size", "follow", NULL,
};

static const char *string_option(lua_State *L, const char *key, size_t *len) {
  const char *s = NULL;
  if (lua_getfield(L, 1, key) != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "tide.http.request: %s must be a string", key);
    s = lua_tolstring(L, -1, len);
  }
  lua_pop(L, 1); /* the options table keeps the string */
  return s;
}

static double seconds_option(lua_State *L, const char *key) {
  double v = 0;
  if (lua_getfield(L, 1, key) != LUA_TNIL) {
    if (!lua_isnumber(L, -1) || !(lua_tonumber(L, -1) > 0) ||
        lua_tonumber(L, -1) > 1e6)
      luaL_error(L, "tide.http.request: %s must be a positive number of "
                 "seconds", key);
    v = (double)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* The request headers as "Name: value" lines, NULL-terminated, in a
** userdata it pushes (the lines in a table it pushes first). */
static const char **header_lines(lua_State *L) {
  int keep, n = 0, i = 0;
  const char **lines;
  if (lua_getfield(L, 1, "headers") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_pushnil(L);
    return NULL;
  }
  if (!lua_istable(L, -1))
    luaL_error(L, "tide.http.request: headers must be a table of "
               "name = value");
  lua_newtable(L);
  keep = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, keep - 1) != 0) {
    size_t nl, vl;
    const char *name, *value;
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "tide.http.request: header names must be strings");
    name = lua_tolstring(L, -2, &nl);
    if (nl == 0 || strpbrk(name, ":\r\n ") || strlen(name) != nl)
      luaL_error(L, "tide.http.request: header name %s is not a name",
                 name);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "tide.http.request: header %s must be a string", name);
    value = lua_tolstring(L, -1, &vl);
    /* The value is not named: it may be a secret. */
    if (strpbrk(value, "\r\n") || strlen(value) != vl)
      luaL_error(L, "tide.http.request: header %s holds a line break or "
                 "a NUL byte", name);
    lua_pushfstring(L, "%s: %s", name, value);
    lua_rawseti(L, keep, ++n);
    lua_pop(L, 1);
  }
  lua_remove(L, keep - 1);
  lines = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *lines, 0);
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, -2, i + 1);
    lines[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lines[n] = NULL;
  return lines;
}

static const char *kind_name(int kind) {
  switch (kind) {
  case TIDE_HTTP_TIMEOUT: return "timeout";
  case TIDE_HTTP_CONNECT: return "connect";
  case TIDE_HTTP_RESET: return "reset";
  case TIDE_HTTP_TOO_LARGE: return "too_large";
  case TIDE_HTTP_CANCELLED: return "cancelled";
  default: return "error";
  }
}

/* The response's header lines as a table of lower-case names. */
static void push_headers(lua_State *L, const char *p, size_t len) {
  const char *end = p + len;
  lua_newtable(L);
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = eol ? eol : end, *colon, *v, *ve;
    luaL_Buffer name;
    if (line_end > p && line_end[-1] == '\r') line_end--;
    colon = memchr(p, ':', (size_t)(line_end - p));
    if (colon != NULL && colon > p && memcmp(p, "HTTP/", 5) != 0) {
      const char *c;
      luaL_buffinit(L, &name);
      for (c = p; c < colon; c++)
        luaL_addchar(&name, (*c >= 'A' && *c <= 'Z') ? *c - 'A' + 'a' : *c);
      luaL_pushresult(&name);
      for (v = colon + 1; v < line_end && (*v == ' ' || *v == '\t'); v++) {
      }
      for (ve = line_end; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--) {
      }
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -3) == LUA_TSTRING) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      }
      lua_rawset(L, -3);
    }
    p = eol ? eol + 1 : end;
  }
}

/* The outcome of a finished request, pushed (stack: 1 options, 2 the
** method, 3 the URL for messages); q is released. */
static int request_result(lua_State *L, Request *q) {
  tide_HttpRequest *r = &q->r;
  int n;
  if (r->kind != TIDE_HTTP_OK) {
    luaL_pushfail(L);
    lua_pushfstring(L, "tide.http: %s %s: %s", lua_tostring(L, 2),
                    lua_tostring(L, 3), r->message);
    lua_pushstring(L, kind_name(r->kind));
    n = 3;
  } else {
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, r->status);
    lua_setfield(L, -2, "status");
    push_headers(L, (const char *)r->head.data, r->head.len);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, (const char *)r->body.data, r->body.len);
    lua_setfield(L, -2, "body");
    n = 1;
  }
  tide_sched_wait_end(&r->w);
  return n;
}

static int request_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return request_result(L, (Request *)ctx);
}

/* Runs q alone on a loop and a client of its own. */
static int request_blocking(lua_State *L, Request *q) {
  uv_loop_t loop;
  tide_Http *h = NULL;
  int rc = uv_loop_init(&loop);
  if (rc != 0) {
    snprintf(q->r.message, sizeof q->r.message,
             "cannot create an event loop: %s", uv_strerror(rc));
    q->r.kind = TIDE_HTTP_OTHER;
    q->r.w.done = 1;
    return request_result(L, q);
  }
  if (tide_http_new(&h, &loop, q->alloc, q->ud) != 0 ||
      tide_http_start(h, &q->r) != 0) {
    snprintf(q->r.message, sizeof q->r.message, "out of memory");
    q->r.kind = TIDE_HTTP_OTHER;
    q->r.w.done = 1;
  }
  while (!q->r.w.done) uv_run(&loop, UV_RUN_ONCE);
  tide_http_free(h);
  uv_run(&loop, UV_RUN_DEFAULT); /* the close callbacks */
  uv_loop_close(&loop);
  return request_result(L, q);
}

/* http_request(options) */
static int http_request(lua_State *L) {
  tide_HttpOptions o;
  const char **headers, *why;
  char shown[512];
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  tide_Sched *s;
  tide_Http *h = NULL;
  Request *q;
  int anchor, rc;
  lua_Integer cap = (lua_Integer)DEFAULT_MAX_SIZE;
  memset(&o, 0, sizeof o);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                    : NULL;
    int i, known = 0;
    for (i = 0; k && options[i]; i++)
      if (strcmp(k, options[i]) == 0) known = 1;
    if (!known)
      return luaL_error(L, "tide.http.request: unknown option %s",
                        k ? k : luaL_typename(L, -2));
    lua_pop(L, 1);
  }
  o.method = string_option(L, "method", NULL);
  o.url = string_option(L, "url", NULL);
  if (o.url == NULL) return luaL_error(L, "tide.http.request: url is needed");
  o.body = string_option(L, "body", &o.body_len);
  o.timeout = seconds_option(L, "timeout");
  o.connect_timeout = seconds_option(L, "connect_timeout");
  if (lua_getfield(L, 1, "max_size") != LUA_TNIL) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
      return luaL_error(L, "tide.http.request: max_size must be a positive "
                        "number of bytes");
    cap = lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  o.max_size = (size_t)cap;
  o.follow = lua_getfield(L, 1, "follow") == LUA_TNIL || lua_toboolean(L, -1);
  lua_pop(L, 1);
  /* 2: the method, 3: the URL as messages show it, 4-5: the headers. */
  lua_pushstring(L, o.method ? o.method : "GET");
  tide_http_url_for_message(o.url, shown, sizeof shown);
  lua_pushstring(L, shown);
  headers = header_lines(L);
  o.headers = headers;
  /* The session's client, before the task is suspended (this may raise);
  ** then nothing may raise before the request is allocated. */
  if (tide_http_ready(&why) != 0)
    return luaL_error(L, "tide.http.request: %s", why);
  s = lua_isyieldable(L) ? tide_lsched_running(L) : NULL;
  if (s != NULL && (rc = tide_sched_http(s, &h)) != 0)
    return luaL_error(L, "tide.http.request: cannot start the HTTP client: "
                      "%s", tide_strerror(rc));
  s = tide_lsched_suspend(L, &anchor);
  q = alloc(ud, NULL, 0, sizeof *q);
  if (q == NULL) return luaL_error(L, "not enough memory");
  rc = tide_http_request_init(&q->r, &o, alloc, ud);
  q->alloc = alloc;
  q->ud = ud;
  q->r.done = request_done;
  q->r.w.cancel = request_cancel;
  q->r.w.release = request_release;
  if (rc != 0) {
    if (rc == TIDE_ENOMEM)
      snprintf(q->r.message, sizeof q->r.message, "out of memory");
    q->r.kind = TIDE_HTTP_OTHER;
    q->r.w.done = 1;
    lua_settop(L, 3);
    return request_result(L, q);
  }
  lua_settop(L, 3);
  if (s == NULL) return request_blocking(L, q);
  tide_sched_wait_begin(s, &q->r.w, anchor);
  if (tide_http_start(h, &q->r) != 0) {
    snprintf(q->r.message, sizeof q->r.message, "out of memory");
    q->r.kind = TIDE_HTTP_OTHER;
    tide_wait_done(&q->r.w);
  }
  return tide_lsched_yield(L, (lua_KContext)q, request_k);
}

/* http_public_url(url): the URL as messages show it. */
static int http_public_url(lua_State *L) {
  size_t len;
  const char *url = luaL_checklstring(L, 1, &len);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, len + 1);
  tide_http_url_for_message(url, out, len + 1);
  luaL_pushresultsize(&b, strlen(out));
  return 1;
}

void tide_lhttp_open(lua_State *L) {
  lua_pushcfunction(L, http_request);
  lua_setfield(L, -2, "http_request");
  lua_pushcfunction(L, http_public_url);
  lua_setfield(L, -2, "http_public_url");
}
