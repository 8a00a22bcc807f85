/*
** Shared libraries loaded when first needed: libpq and libcurl, with the
** thirty-odd libraries they pull in (TLS, Kerberos, LDAP, IDN...), are
** most of what starting a process that links them costs (about 20 ms of
** CPU against 2 for the rest). A run that never reaches PostgreSQL or
** HTTP does not load them; one that does loads each once, at its first
** connection or request.
**
** A library is described by its soname (the runtime package's file, as
** the linker would have recorded it), the Debian package that holds it,
** and the names of the functions tide calls; loading fills their
** addresses in, in the same order. It is tried once per process: a
** failure (the package missing, a function missing from an old version)
** is kept and given again to every later caller, as a message that names
** the package. Thread-safe: the first callers wait for the load.
*/
#ifndef TIDE_DYNLIB_H
#define TIDE_DYNLIB_H

#include <stddef.h>

typedef struct tide_Dynlib {
  const char *soname;         /* "libpq.so.5" */
  const char *package;        /* "libpq5" */
  const char *what;           /* "PostgreSQL support" */
  const char *const *names;   /* the functions, NULL-terminated */
  void **fns;                 /* their addresses, in the same order */
  void (*loaded)(void);       /* run once after loading, or NULL */
  int state;                  /* 0 not tried, 1 loaded, -1 failed */
  char message[384];
} tide_Dynlib;

/* Loads d unless it is loaded already: 0, or -1 with *message (d's,
** valid as long as the process) saying what is missing and how to get
** it. */
int tide_dynlib_need(tide_Dynlib *d, const char **message);

#endif
