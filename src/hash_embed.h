/*
** A text embedding that needs no model: feature hashing of the words of a
** text and of their character 3-grams, into a vector of dims float32s of
** Euclidean norm 1 (ai.hash_embedder wraps it). It measures lexical
** similarity: texts that share words, or parts of words (`embedding` and
** `embedder`, `colour` and `color`), get a high cosine; synonyms and
** paraphrases that share no letters get none. It is not semantic.
**
** Tokenisation, one byte or one UTF-8 sequence at a time:
** - ASCII letters are word characters, lowercased; ASCII digits are word
**   characters; every other ASCII byte (space, punctuation, `_`, NUL) is
**   a separator.
** - A valid UTF-8 sequence (utf8.h) is one character, its code point kept
**   as is (no case folding outside ASCII). It is a separator when it is
**   punctuation, a symbol or a space in these ranges: U+0080-U+00BF
**   (except the letters U+00AA, U+00B5, U+00BA), U+00D7, U+00F7,
**   U+2000-U+2BFF (general punctuation through arrows, mathematical
**   operators, shapes and dingbats), U+3000-U+303F (CJK punctuation),
**   U+FE30-U+FE4F, U+FEFF, U+FF00-U+FF0F, U+FF1A-U+FF20, U+FF3B-U+FF40,
**   U+FF5B-U+FF65 (full-width punctuation) and U+1F000-U+1FAFF (emoji and
**   other pictographs); every other code point is a word character.
** - A byte that starts no valid sequence (Latin-1 text, a stray
**   continuation byte) is a word character of its own, numbered
**   0x110000 + byte, so that it never equals a code point.
** A word is a maximal run of word characters. Text in a script written
** without spaces (Chinese, Japanese) makes long words, and then mostly its
** 3-grams carry the similarity.
**
** Features, for each occurrence of a word of L characters c1..cL:
** - the word itself, weight 1: h = FNV-1a over its characters (h starts
**   at 0xcbf29ce484222325; for each character h = (h ^ c) *
**   0x100000001b3, mod 2^64), feature hash mix(h ^ WORD_SEED);
** - its L character 3-grams with a boundary marker B (0x1fffff, not a
**   character) at both ends: (B c1 c2), (c1 c2 c3), ..., (cL-1 cL B),
**   and (B c1 B) for a word of one character; weight 0.5 each, feature
**   hash mix((a << 42 | b << 21 | c) ^ TRIGRAM_SEED) (characters fit in
**   21 bits).
** So a word weighs more than any one of its 3-grams, while the 3-grams
** together (about L / 4 of the word's weight squared) let words that
** share a stem or differ by a typo meet. Counts are plain: a word that
** occurs twice adds twice.
** mix is the 64-bit finaliser of splitmix64: z = (z ^ z >> 30) *
** 0xbf58476d1ce4e5b9; z = (z ^ z >> 27) * 0x94d049bb133111eb; z ^ z >> 31.
** WORD_SEED is 0x9e3779b97f4a7c15 and TRIGRAM_SEED 0x6a09e667f3bcc909.
** A feature hash f adds +weight to element ((f >> 32) * dims) >> 32 when
** its lowest bit is 0 and -weight when it is 1: signed hashing, so that
** the features that collide in an element cancel on average instead of
** adding up, and dot products stay unbiased.
**
** The sums (exact up to 2^24 in each element, far beyond a text of
** megabytes) are then divided by their Euclidean norm, computed in
** doubles, and rounded to float32: the result has norm 1 to within
** float32 rounding. A text without word characters (empty, spaces,
** punctuation) gives the zero vector; so would, by chance, features whose
** signed weights cancel exactly.
**
** Everything above is integer arithmetic on bytes, the same on every
** machine, so the same text always gives the same bits. Stored vectors
** depend on it: any change to tokenisation, features, weights, hashes or
** seeds must change TIDE_HASH_EMBED_VERSION, which callers put into
** their fingerprints.
*/
#ifndef TIDE_HASH_EMBED_H
#define TIDE_HASH_EMBED_H

#include <stddef.h>

/* The version of the algorithm above. */
#define TIDE_HASH_EMBED_VERSION 1

/* The largest dimension (the bucket formula needs dims <= 2^32; more
** than this is no use for a lexical embedding). */
#define TIDE_HASH_EMBED_MAX_DIMS 65536

/* Writes the embedding of the len bytes at text (borrowed, any bytes,
** no terminator needed) into out[0..dims-1] (owned by the caller), with
** 1 <= dims <= TIDE_HASH_EMBED_MAX_DIMS. Returns the number of features
** hashed (words plus 3-grams); 0 means the zero vector. Never fails and
** allocates nothing. */
size_t tide_hash_embed(const char *text, size_t len, float *out,
                       size_t dims);

#endif
