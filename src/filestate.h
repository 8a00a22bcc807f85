/*
** The file-state cache: what the store remembers of the files of one
** walked source, held in memory for a run, so that a file whose stat has
** not changed is never read again (DESIGN.md section 1: a file is first
** checked by (size, mtime_ns, inode); only when those differ is its
** content read and hashed).
**
** A cache is loaded once from the store (every item of the source, one
** sequential statement), looked up once per walked file, and extended as
** files are hashed. The rules:
** - A file matches when the cache has a state for its relative path, that
**   state has a content fingerprint, and size, mtime_ns and inode are all
**   equal to the file's. Then the stored fingerprint is the file's content
**   fingerprint, without reading it.
** - Any difference means "read and hash it": a touch that changes only
**   the mtime, an editor's save-by-rename that changes only the inode.
**   Equal content then still makes an unchanged component further up.
** - A state without a fingerprint never matches.
** - A put writes through: the new state goes into the cache and into the
**   store's open batch in one call, so the next run finds what this one
**   saw. States of files that are gone stay; they match nothing.
**
** Source names and paths are (pointer, length): bytes, NUL included, as in
** the store. A fingerprint is TIDE_FP_SIZE raw bytes.
**
** The lookup: the loaded states are kept in path order (the store hands
** them so), their paths in one buffer; a path is first compared with the
** state after the last one found (a walk asks in about that order), then
** found by binary search; a file first seen in this run whose path sorts
** after every state joins that sorted run (a cold run's walk adds them so,
** without a search), any other goes to a hash map (hashmap.h), so a
** no-change run hashes nothing.
*/
#ifndef TIDE_FILESTATE_H
#define TIDE_FILESTATE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "tide.h"

typedef struct tide_FileStates tide_FileStates;

/* A new, empty cache for the source named by len bytes at source (copied).
** alloc NULL means tide_alloc_default. TIDE_ENOMEM leaves *out NULL. */
int tide_filestates_new(tide_FileStates **out, const char *source,
                        size_t len, tide_Alloc alloc, void *ud);

/* Frees a cache; accepts NULL. */
void tide_filestates_free(tide_FileStates *fs);

/* The source's name (borrowed) and its length. */
const char *tide_filestates_source(const tide_FileStates *fs, size_t *len);

/* Adds every item the store holds for the source of the app. Returns 0,
** TIDE_ENOMEM, or the store's code with the message on the store. */
int tide_filestates_load(tide_FileStates *fs, tide_Store *s, int64_t app_id);

/* Adds one state the store holds for the cache's source (item->source is
** not read): tide_filestates_load's step, for a loader that reads the
** states of many sources in one statement. Items come in key order, as
** the store hands them. Returns 0 or TIDE_ENOMEM. */
int tide_filestates_add(tide_FileStates *fs,
                        const tide_StoreSourceItem *item);

/* The stored content fingerprint of the file at path (len bytes) when its
** (size, mtime_ns, inode) still match, else NULL. Borrowed until the next
** put. */
const uint8_t *tide_filestates_match(tide_FileStates *fs,
                                     const char *path, size_t len,
                                     int64_t size, int64_t mtime_ns,
                                     int64_t inode);

/* Records a file's new state in the cache and in the store. Returns 0,
** TIDE_ENOMEM (nothing recorded), or the store's code with the message on
** the store (the cache has the new state). */
int tide_filestates_put(tide_FileStates *fs, tide_Store *s, int64_t app_id,
                        const char *path, size_t len, int64_t size,
                        int64_t mtime_ns, int64_t inode, const uint8_t *fp);

#endif
