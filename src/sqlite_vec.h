/*
** SQL functions over tide's vectors (vec.h), for ranking rows by distance
** in SQLite: on every connection of the SQLite connector (sqlite.table,
** sqlite.rows, sqlite.open), and in any SQLite client through the loadable
** extension build/tide_vec.so (`.load build/tide_vec` in the sqlite3
** shell), which is this file built with TIDE_VEC_EXTENSION.
**
**   vec_distance_cosine(a, b)  1 - cos(a, b), in [0, 2]
**   vec_distance_l2(a, b)      the Euclidean distance
**   vec_dot(a, b)              the dot product
**   vec_json(a)                the vector as a JSON array of numbers
**
** A vector argument is a BLOB of little-endian float32s, as tide stores a
** tide.vector(N), or TEXT holding a JSON array of numbers ('[0.5, 1]'),
** taken as float32s. NULL in gives NULL out, and so does a cosine distance
** with a vector of norm 0. Anything else (another type, a BLOB whose size
** is not a multiple of 4, malformed JSON, two dimensions) is an SQL error
** that names the function, the argument and what was wrong.
*/
#ifndef TIDE_SQLITE_VEC_H
#define TIDE_SQLITE_VEC_H

#include <sqlite3.h>

/* Registers the functions on db; SQLite's result code. */
int tide_sqlite_vec_register(sqlite3 *db);

#endif
