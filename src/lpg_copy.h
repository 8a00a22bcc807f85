/*
** Records as PostgreSQL COPY data (lpg_copy.c), for the bindings that
** send them: core.pg_copy_rows returns them as a string, a COPY's
** send_rows (lpg.c) writes them straight to the server.
*/
#ifndef TIDE_LPG_COPY_H
#define TIDE_LPG_COPY_H

#include <lua.h>

#include "buf.h"

/* Appends to out the COPY lines of changes first..last of the list at
** index changes, converted by the plan at index plan (lrows.h), vectors
** as pgvector's text when pgvector, without the position and delete
** columns when bare (upserts only). 0, or non-zero with the message,
** naming the change and the column, in err. The stack is as it was;
** misuse of the plan raises. */
int tide_lpg_copy_rows(lua_State *L, int plan, int changes, int pgvector,
                       int bare, lua_Integer first, lua_Integer last,
                       tide_Buf *out, char *err, size_t size);

#endif
