/*
** A run's claims: which component declared the target state (container,
** key) in this run, so that a key declared twice, by one component or by
** two, is found (reconcile.lua); and which component paths were mounted,
** so that a path mounted twice is (engine.lua). Kept in C for the whole
** run instead of Lua tables keyed by key bytes and paths: one
** string-keyed hash map (hashmap.h) and the claimants' paths side by side.
**
** A state's claim is keyed by the container's row id (8 bytes,
** little-endian; row ids are positive) followed by the state's canonical
** key bytes, a path's by 8 zero bytes followed by the path. A claimant's
** path is stored once for the declarations one component makes in a row.
** Memory comes from the allocator given at init; a claims set is used by
** one thread at a time.
*/
#ifndef TIDE_CLAIMS_H
#define TIDE_CLAIMS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hashmap.h"
#include "tide.h"

typedef struct tide_Claims {
  tide_HashMap map; /* claim key -> offset of its claimant in paths */
  tide_Buf paths;   /* each claimant: u32 length, bytes, NUL */
  tide_Buf scratch; /* the claim key being looked up */
  tide_Buf diff;    /* a component's declared states (lclaims.c, diff) */
  size_t last;      /* offset of the path stored last, SIZE_MAX for none */
} tide_Claims;

/* alloc NULL means tide_alloc_default. Allocates nothing. */
void tide_claims_init(tide_Claims *c, tide_Alloc alloc, void *ud);
/* Frees everything; accepts NULL. */
void tide_claims_close(tide_Claims *c);

/*
** Claims the state (container_id, key) for the component at path.
** Returns 0 when nobody had claimed it (now path has), 1 when it was
** claimed already: *other and *other_len (borrowed until the next call)
** then name the claimant, which may be path itself; TIDE_ENOMEM leaves
** the set as it was.
*/
int tide_claims_take(tide_Claims *c, int64_t container_id, const void *key,
                     size_t key_len, const char *path, size_t path_len,
                     const char **other, size_t *other_len);

/* Claims the component path for one mount: 0 when it was not mounted
** before (now it is), 1 when it was; TIDE_ENOMEM leaves the set as it
** was. */
int tide_claims_take_path(tide_Claims *c, const char *path, size_t len);

/* How many states and paths are claimed. */
size_t tide_claims_count(const tide_Claims *c);

#endif
