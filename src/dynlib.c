/*
** Shared libraries loaded when first needed (dynlib.h): dlopen and dlsym
** once, under one lock for all of them.
*/
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "dynlib.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void load(tide_Dynlib *d) {
  void *handle = dlopen(d->soname, RTLD_NOW | RTLD_LOCAL);
  size_t i;
  if (handle == NULL) {
    snprintf(d->message, sizeof d->message, "%s needs %s (Debian package "
             "%s), which cannot be loaded: %s", d->what, d->soname,
             d->package, dlerror());
    d->state = -1;
    return;
  }
  for (i = 0; d->names[i]; i++) {
    /* dlsym's result as a function's address: the POSIX way to read it. */
    void *f = dlsym(handle, d->names[i]);
    if (f == NULL) {
      snprintf(d->message, sizeof d->message, "%s needs %s from %s (Debian "
               "package %s), which lacks it: is it too old?", d->what,
               d->names[i], d->soname, d->package);
      dlclose(handle);
      d->state = -1;
      return;
    }
    d->fns[i] = f;
  }
  if (d->loaded) d->loaded();
  d->state = 1;
}

int tide_dynlib_need(tide_Dynlib *d, const char **message) {
  int state;
  pthread_mutex_lock(&lock);
  if (d->state == 0) load(d);
  state = d->state;
  pthread_mutex_unlock(&lock);
  if (state == 1) return 0;
  *message = d->message;
  return -1;
}
