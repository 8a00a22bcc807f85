/*
** tide: an incremental data-processing engine for Lua.
** This is the only public header. Every fallible call returns 0 or a
** negative TIDE_E* code; the message lives on the object the call used.
*/
#ifndef TIDE_H
#define TIDE_H

#include <stddef.h>

#include <lua.h>

#if defined(__GNUC__)
#define TIDE_API __attribute__((visibility("default")))
#else
#define TIDE_API
#endif

#define TIDE_VERSION_MAJOR 0
#define TIDE_VERSION_MINOR 1
#define TIDE_VERSION_PATCH 0
#define TIDE_VERSION "0.1.0"

/* Error codes: one list, negative values, like libuv's UV_E*. */
#define TIDE_ERRNO_MAP(XX)                                               \
  XX(NOMEM, "out of memory")                                            \
  XX(INVAL, "invalid argument")                                         \
  XX(IO, "input/output error")                                          \
  XX(ENCODE, "value cannot be encoded")                                 \
  XX(DECODE, "malformed or non-canonical encoding")                     \
  XX(STORE, "state store error")                                        \
  XX(LOCKED, "state store is locked by another writer")                 \
  XX(VERSION, "unsupported state store version")                        \
  XX(NOTSTORE, "file is not a tide state store")                        \
  XX(NOTFOUND, "not found")                                             \
  XX(LUA, "error in Lua code")

typedef enum {
  TIDE_OK = 0,
#define TIDE_ERRNO_ENUM(name, msg) TIDE__E##name,
  TIDE__EBASE = 0,
  TIDE_ERRNO_MAP(TIDE_ERRNO_ENUM)
#undef TIDE_ERRNO_ENUM
  TIDE__ELAST
} tide_errno_base;

#define TIDE_ERRNO_VALUE(name, msg) enum { TIDE_E##name = -TIDE__E##name };
TIDE_ERRNO_MAP(TIDE_ERRNO_VALUE)
#undef TIDE_ERRNO_VALUE

/* A short, static description of an error code. */
TIDE_API const char *tide_strerror(int code);

/* The name of an error code, from the list above: "ENOMEM" for
** TIDE_ENOMEM, "OK" for 0, "UNKNOWN" for any other value. Static. */
TIDE_API const char *tide_err_name(int code);

/* The allocator every part of tide allocates through; lua_Alloc's
** signature, so a host hands in one allocator for Lua and tide alike. */
typedef void *(*tide_Alloc)(void *ud, void *ptr, size_t osize, size_t nsize);

/* The version string, e.g. "0.1.0". */
TIDE_API const char *tide_version(void);

/* Opens the C core as a Lua module (`require "tide.core"`). [-0, +1, m] */
TIDE_API int luaopen_tide_core(lua_State *L);

#endif
