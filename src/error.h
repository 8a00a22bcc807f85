/*
** Describing system errors in tide's messages: the text of an errno value
** in the lowercase the rest of tide's messages use ("permission denied"),
** so that "PATH: permission denied" reads the same whichever layer saw it.
*/
#ifndef TIDE_ERROR_H
#define TIDE_ERROR_H

#include <stddef.h>

/* Room enough for the text of any errno value. */
#define TIDE_ERRNO_TEXT_SIZE 128

/* Writes the description of errnum into buf (size bytes, at least 1) and
** returns buf: strerror's text with its first letter lowered when the word
** is not an acronym ("I/O error" stays). Thread-safe; allocates nothing. */
const char *tide_error_errno_text(int errnum, char *buf, size_t size);

#endif
