/*
** Creating directories: tide's one `mkdir -p`, used by the fs.dir target
** (core.fs_mkdir), atomic file writes (walk.h), and for the folders
** leading to a database file (the state store, the SQLite target).
**
** The algorithm: mkdir the whole path first, since its parent usually
** exists; only on ENOENT (or ENOTDIR: something in the way) cut the last
** segment off, make that the same way, and come back down. Making a path whose parent exists costs one mkdir;
** each missing level costs one more.
**
** Edge cases: a directory that exists, or that another process makes
** meanwhile (EEXIST), is success; anything else in the way is ENOTDIR
** ("not a directory"). Repeated and trailing slashes are allowed. The root
** and a relative path's first segment are never cut further. Paths are C
** strings shorter than PATH_MAX (longer ones fail with "name too long").
** Directories are made with mode 0777 less the umask.
*/
#ifndef TIDE_MKDIRS_H
#define TIDE_MKDIRS_H

#include <stddef.h>

/* Creates path and its missing parents as directories. *created (may be
** NULL) receives how many it made: the nearest *created ancestors of the
** path, counting the path itself, are new. TIDE_EIO (TIDE_ENOTFOUND for
** ENOENT) with "PATH: reason" in err. */
int tide_dir_make(const char *path, int *created, char *err, size_t errlen);

/* Creates the directories leading to the file at path (its parent and
** theirs), not the file itself; nothing for a path without a `/`.
** *created as above. On failure err is "DIR: reason", DIR being the
** directory that could not be made (the highest one, so the file in the
** way when there is one), so a caller can say "cannot create directory
** DIR: reason". */
int tide_dir_make_parent(const char *path, int *created, char *err,
                         size_t errlen);

#endif
