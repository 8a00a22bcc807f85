/* Files read and hashed a window ahead of their consumer (readahead.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "readahead.h"

int tide_readahead_init(tide_ReadAhead *ra, const char *dir, size_t dir_len,
                        tide_AheadNext next, void *ud, tide_Alloc alloc,
                        void *aud) {
  int w, i;
  memset(ra, 0, sizeof *ra);
  if (alloc == NULL) alloc = tide_alloc_default;
  ra->next = next;
  ra->ud = ud;
  ra->alloc = alloc;
  ra->aud = aud;
  for (w = 0; w < 2; w++)
    for (i = 0; i < TIDE_AHEAD_FILES; i++)
      tide_buf_init(&ra->slots[w][i].bytes, alloc, aud);
  ra->dir = alloc(aud, NULL, 0, dir_len + 1);
  if (ra->dir == NULL) return TIDE_ENOMEM;
  memcpy(ra->dir, dir, dir_len);
  ra->dir[dir_len] = '\0';
  ra->dir_len = dir_len;
  return 0;
}

/* ---- The thread's side ---- */

/* Reads slot's file whole into its buffer (room for size + 1 bytes, so a
** file that grew is seen) and hashes it. */
static void read_slot(const tide_ReadAhead *ra, tide_AheadSlot *slot) {
  char abs[PATH_MAX];
  size_t got = 0, room = slot->bytes.cap;
  int fd;
  slot->ok = 0;
  if (room < (size_t)slot->size + 1 ||
      ra->dir_len + 1 + slot->len + 1 > sizeof abs)
    return;
  memcpy(abs, ra->dir, ra->dir_len);
  abs[ra->dir_len] = '/';
  memcpy(abs + ra->dir_len + 1, slot->path, slot->len);
  abs[ra->dir_len + 1 + slot->len] = '\0';
  fd = open(abs, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  while (got < room) {
    ssize_t n = read(fd, slot->bytes.data + got, room - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0) got = room; /* an error: not read ahead */
      break;
    }
    got += (size_t)n;
  }
  close(fd);
  if (got != (size_t)slot->size) return;
  slot->bytes.len = got;
  {
    tide_Fp fp;
    tide_fp_bytes(&fp, slot->bytes.data, got);
    memcpy(slot->fp, fp.bytes, TIDE_FP_SIZE);
  }
  slot->ok = 1;
}

static int read_window(void *arg) {
  tide_ReadAhead *ra = arg;
  int w = ra->job_window, i;
  for (i = 0; i < ra->count[w]; i++) read_slot(ra, &ra->slots[w][i]);
  return 0;
}

/* ---- The consumer's side ---- */

/* Fills window w with the next candidates, their buffers made room for;
** how many. */
static int fill(tide_ReadAhead *ra, int w) {
  int64_t bytes = 0;
  int n = 0;
  while (n < TIDE_AHEAD_FILES && bytes < TIDE_AHEAD_BYTES) {
    tide_AheadSlot *slot = &ra->slots[w][n];
    if (!ra->next(ra->ud, &slot->key, &slot->path, &slot->len, &slot->size))
      break;
    slot->bytes.len = 0;
    slot->ok = 0;
    /* Without room the thread leaves it to the consumer. */
    if (slot->size >= 0) tide_buf_reserve(&slot->bytes, (size_t)slot->size + 1);
    bytes += slot->size;
    n++;
  }
  ra->count[w] = n;
  return n;
}

/* Hands window w to the thread, or reads it here if there is none. */
static void send_window(tide_ReadAhead *ra, int w) {
  ra->job_window = w;
  if (tide_job_send(&ra->job, read_window, ra) == 0) {
    ra->filling = 1;
    return;
  }
  read_window(ra);
  ra->filling = 1; /* done already: the wait returns at once */
}

/* The first window is read here (the consumer would wait for it all the
** same); the thread starts only if there is a second. */
static void start(tide_ReadAhead *ra) {
  ra->started = 1;
  ra->current = 0;
  ra->taken = 0;
  if (ra->dir == NULL || fill(ra, 0) == 0) return;
  ra->job_window = 0;
  read_window(ra);
  if (fill(ra, 1) > 0) send_window(ra, 1);
}

int tide_readahead_take(tide_ReadAhead *ra, size_t key,
                        const uint8_t **data, size_t *len,
                        const uint8_t **fp) {
  if (!ra->started) start(ra);
  for (;;) {
    int w = ra->current;
    tide_AheadSlot *slot;
    while (ra->taken < ra->count[w] && ra->slots[w][ra->taken].key < key)
      ra->taken++;
    if (ra->taken < ra->count[w]) {
      slot = &ra->slots[w][ra->taken];
      if (slot->key != key) return 0;
      ra->taken++;
      if (!slot->ok) return 0;
      *data = slot->bytes.data;
      *len = slot->bytes.len;
      *fp = slot->fp;
      return 1;
    }
    /* This window is past: take from the other, refill this one. */
    if (!ra->filling) return 0;
    tide_job_wait(&ra->job);
    ra->filling = 0;
    ra->current = 1 - w;
    ra->taken = 0;
    if (fill(ra, w) > 0) send_window(ra, w);
  }
}

void tide_readahead_close(tide_ReadAhead *ra) {
  int w, i;
  tide_job_stop(&ra->job);
  for (w = 0; w < 2; w++)
    for (i = 0; i < TIDE_AHEAD_FILES; i++)
      tide_buf_close(&ra->slots[w][i].bytes);
  if (ra->dir) ra->alloc(ra->aud, ra->dir, ra->dir_len + 1, 0);
  ra->dir = NULL;
}
