/*
** Vectors as tide stores them: a tide.vector(N) value is a BLOB of N
** little-endian IEEE-754 float32s, 4N bytes (the SQLite target writes it
** so, lsqlite.c). These are the distances a search ranks them by.
**
** Sums are taken in double precision whatever the dimension, so a
** distance agrees with a reference computation in doubles to about 1e-7
** of its magnitude; the bytes are read one element at a time with memcpy
** (a BLOB is not aligned for floats). Edge cases:
** - a BLOB whose size is not a multiple of 4 is not a vector;
** - two vectors of different dimensions have no distance;
** - the cosine distance of a vector whose norm is 0 (all zeros) is
**   undefined: such a pair has none either (SQL NULL), where a division
**   by zero would give NaN;
** - an element that is NaN or infinite (only a writer other than tide can
**   store one) makes the result NaN or infinite, as IEEE arithmetic says.
** Zero dimensions is a vector: its dot product and L2 distance are 0.
*/
#ifndef TIDE_VEC_H
#define TIDE_VEC_H

#include <stddef.h>

/* How many float32s a BLOB of size bytes holds, or -1 when size is not a
** multiple of 4. */
long tide_vec_dims(size_t size);

/* The dot product of two vectors of n elements. */
double tide_vec_dot(const void *a, const void *b, size_t n);

/* The Euclidean distance. */
double tide_vec_l2(const void *a, const void *b, size_t n);

/* 1 - cos(a, b), in [0, 2]; 0 with *undefined set when either norm is 0. */
double tide_vec_cosine(const void *a, const void *b, size_t n,
                       int *undefined);

/* Element i (from 0) as a double. */
double tide_vec_at(const void *v, size_t i);

#endif
