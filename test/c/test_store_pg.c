/*
** Tests of the state store on PostgreSQL only: its schemas, a lost
** connection, the password kept out of messages, the work items and
** workers that share an update, memo entries two processes write, and the
** upgrades of older schemas. Without TIDE_TEST_PG every test is skipped;
** scripts/run-tests.sh runs this binary again on a server of its own.
*/

#include <poll.h>
#include <pthread.h>

#include "store_fixture.h"

/* ---- PostgreSQL's schemas ---- */

static int64_t pg_tables(const Tmp *t) {
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_tables"
           " WHERE schemaname = '%s'", t->schema);
  return sql_int(t->path, sql);
}

static void test_pg_schema(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreApp app;
  tide_StoreComponent c;
  char text[64];
  uint8_t fp[TIDE_FP_SIZE];
  int64_t id = 0, cid = 0;
  int created = -1;
  tmp_init(&t, "unused");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_STR_EQ(tide_store_path(s), t.path);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, &created), 0);
  CHECK(id > 0);
  CHECK_EQ_INT(created, 1);
  fp_fill(fp, 1);
  memset(&c, 0, sizeof c);
  c.app_id = id;
  SET_STR(c.path, "/process_file/a.md");
  SET_STR(c.fn_name, "process_file");
  c.logic_fp = fp;
  CHECK_EQ_INT(tide_store_component_put(s, &c, &cid), 0);
  CHECK(cid > 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  CHECK_EQ_INT(pg_tables(&t), 14);
  CHECK_STR_EQ(sql_text(t.path, "SELECT value FROM meta WHERE key = 'format'",
                        text, sizeof text), "tide-state");
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "4");
  CHECK_STR_EQ(sql_text(t.path, "SELECT value FROM meta"
                        " WHERE key = 'created_by'", text, sizeof text),
               "tide " TIDE_VERSION);
  s = open_ok(t.path, TIDE_STORE_READ);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("docs"), &app), 0);
  CHECK_EQ_INT(app.id, id);
  CHECK_EQ_INT(tide_store_component_get(s, id, LIT("/process_file/a.md"), &c),
               0);
  CHECK_EQ_INT(c.id, cid);
  CHECK(fp_equal(c.logic_fp, fp));
  tide_store_close(s);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, &created), 0);
  CHECK_EQ_INT(created, 0);
  tide_store_close(s);
  tmp_close(&t);
}

static void test_pg_refused(void) {
  Tmp t;
  char msg[768], sql[256], bad[600];
  tmp_init(&t, "unused");
  snprintf(msg, sizeof msg, "%s: no such state store", t.path);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTFOUND, msg);
  /* A schema of someone else's tables is left as it is. */
  snprintf(sql, sizeof sql, "CREATE SCHEMA %s; CREATE TABLE %s.t(x int)",
           t.schema, t.schema);
  CHECK_EQ_INT(pg_exec(NULL, sql), 0);
  snprintf(msg, sizeof msg, "%s: not a tide state store (schema %s holds "
           "other tables)", t.path, t.schema);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_ENOTSTORE, msg);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTSTORE, msg);
  CHECK_EQ_INT(pg_tables(&t), 1);
  tmp_close(&t);
  /* A store with a table missing is damaged; one of another version is
  ** refused, not rebuilt. */
  tmp_init(&t, "unused");
  tide_store_close(open_ok(t.path, TIDE_STORE_WRITE));
  CHECK_EQ_INT(sql_exec(t.path, "UPDATE meta SET value = '7'"
                                " WHERE key = 'version'"), SQLITE_OK);
  snprintf(msg, sizeof msg, "%s: state store format version 7 is not "
           "supported by this tide (supports 2 to 4)", t.path);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_EVERSION, msg);
  CHECK_EQ_INT(sql_exec(t.path, "UPDATE meta SET value = '4'"
                                " WHERE key = 'version'; DROP TABLE runs"),
               SQLITE_OK);
  snprintf(msg, sizeof msg, "%s: state store is damaged (tables are "
           "missing)", t.path);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTSTORE, msg);
  tmp_close(&t);
  /* Schema names tide makes need no quoting. */
  snprintf(bad, sizeof bad, "%s%cschema=Bad-Name", pg_base(),
           strchr(pg_base(), '?') ? '&' : '?');
  check_open_fails(bad, TIDE_STORE_WRITE, TIDE_EINVAL,
                   "state store location: the schema must be lowercase "
                   "letters, digits and underscores, not starting with a "
                   "digit");
}

/* libpq's keyword=value form is a PostgreSQL location too; its public
** form keeps each pair as written but the password. */
static void test_pg_keywords(void) {
  char out[256];
  CHECK(tide_store_is_postgres("host=/run/postgresql dbname=docs"));
  CHECK(tide_store_is_postgres(" dbname = docs"));
  CHECK(!tide_store_is_postgres("./host=x.db"));
  CHECK(!tide_store_is_postgres("state.db"));
  CHECK(!tide_store_is_postgres("/tmp/host=x.db"));
  CHECK(!tide_store_is_postgres("Host=x"));
  CHECK_EQ_INT(tide_store_public_location(
                   "host=/run/pg password='s3 cr\\'et' dbname = 'my db' "
                   "schema=docs", out, sizeof out), 0);
  CHECK_STR_EQ(out, "host=/run/pg dbname='my db' schema=docs");
  CHECK_EQ_INT(tide_store_public_location("host=/x schema='' ", out,
                                          sizeof out), TIDE_EINVAL);
  CHECK_STR_EQ(out, "state store location: the schema must be 1 to 63 "
               "characters long");
  CHECK_EQ_INT(tide_store_public_location("host=/x dbname", out,
                                          sizeof out), TIDE_EINVAL);
  /* Pairs run together after a quote: refused, not copied with a blank
  ** the location has no room for. */
  CHECK_EQ_INT(tide_store_public_location("a='x'b=y", out, sizeof out),
               TIDE_EINVAL);
  CHECK_STR_EQ(out, "state store location: a quoted value must be "
               "followed by a blank");
}

/* The location's password never reaches the path or a message. */
static void test_pg_password(void) {
  Tmp t;
  tide_Store *s = NULL, *again = NULL;
  char location[700];
  tmp_init(&t, "unused");
  snprintf(location, sizeof location, "%s&password=s3cret-word", t.path);
  s = open_ok(location, TIDE_STORE_WRITE);
  CHECK_STR_EQ(tide_store_path(s), t.path);
  /* Opened again as it was reached, shown as it was. */
  CHECK_EQ_INT(tide_store_open_again(&again, s, TIDE_STORE_READ), 0);
  CHECK_STR_EQ(tide_store_path(again), t.path);
  tide_store_close(again);
  tide_store_close(s);
  s = NULL;
  CHECK_EQ_INT(tide_store_open(&s, "postgresql://tide:s3cret-word@/postgres"
                               "?host=/nonexistent&schema=x",
                               TIDE_STORE_WRITE, NULL, NULL), TIDE_EIO);
  CHECK(strstr(tide_store_errmsg(s), "s3cret") == NULL);
  CHECK(strncmp(tide_store_errmsg(s), "postgresql://tide@/postgres"
                "?host=/nonexistent&schema=x: cannot connect: ", 68) == 0);
  tide_store_close(s);
  tmp_close(&t);
}

/* Work items: claimed by one worker at a time, done once, taken over when
** a worker's lease runs out, freed when it leaves. */
typedef struct {
  int count;
  int64_t ids[16];
} Claimed;

static int see_item(void *arg, const tide_StoreWorkItem *w) {
  Claimed *c = arg;
  if (c->count < 16) c->ids[c->count] = w->id;
  c->count++;
  return 0;
}

static Claimed claim(tide_Store *s, int64_t u, int64_t worker, int max,
                     int64_t lease_ms, int64_t *open) {
  Claimed c;
  memset(&c, 0, sizeof c);
  CHECK_EQ_INT(tide_store_work_claim(s, u, worker, max, lease_ms, see_item,
                                     &c, open), 0);
  return c;
}

typedef struct {
  int count;
  int64_t done[4], claimed[4];
  int left[4];
} Workers;

static int see_worker(void *arg, const tide_StoreWorker *w) {
  Workers *k = arg;
  if (k->count < 4) {
    k->done[k->count] = w->done;
    k->claimed[k->count] = w->claimed;
    k->left[k->count] = w->left;
  }
  k->count++;
  return 0;
}

/* A writer's store holding a listed update of the app "docs" with items
** work items (info, NUL-terminated, or NULL, for its workers). */
static tide_Store *listed_update(const char *path, int items,
                                 const char *info, int64_t *app,
                                 int64_t *u) {
  tide_Store *s = open_ok(path, TIDE_STORE_WRITE);
  int i;
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), app, NULL), 0);
  CHECK_EQ_INT(tide_store_update_open(s, *app, u), 0);
  for (i = 0; i < items; i++)
    CHECK_EQ_INT(tide_store_work_add(s, *u, LIT("/f/x"), LIT("item")), 0);
  CHECK_EQ_INT(tide_store_update_set(s, *u, TIDE_UPDATE_LISTED, info,
                                     info ? strlen(info) : 0), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  return s;
}

static void test_pg_work(void) {
  Tmp t;
  tide_Store *s, *a, *b;
  Claimed got;
  Workers k;
  int64_t app, u, wa, wb, open = -1, cur, alive = -1;
  const void *info;
  size_t info_len;
  int state, i;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 5, "info", &app, &u);
  /* Workers write without the writer lock, which s holds. */
  a = open_ok(t.path, TIDE_STORE_SHARED);
  b = open_ok(t.path, TIDE_STORE_SHARED);
  CHECK_EQ_INT(tide_store_update_current(a, app, &cur, &state, &info,
                                         &info_len), 0);
  CHECK_EQ_INT(cur, u);
  CHECK_EQ_INT(state, TIDE_UPDATE_LISTED);
  CHECK(blob_equal(info, info_len, "info", 4));
  CHECK_EQ_INT(tide_store_worker_join(a, u, LIT("here"), 11, &wa), 0);
  CHECK_EQ_INT(tide_store_worker_join(b, u, LIT("there"), 22, &wb), 0);
  CHECK_EQ_INT(tide_store_workers_alive(s, u, 60000, &alive), 0);
  CHECK_EQ_INT(alive, 2);
  got = claim(a, u, wa, 2, 60000, &open);
  CHECK_EQ_INT(got.count, 2);
  CHECK_EQ_INT(open, -1);
  got = claim(b, u, wb, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 3);
  got = claim(b, u, wb, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 0);
  /* Done once: by its holder, in the batch that records its work. */
  CHECK_EQ_INT(tide_store_work_done(a, 1, wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  CHECK_EQ_INT(tide_store_work_done(b, 1, wb), 0);
  CHECK_EQ_INT(tide_store_flush(b), TIDE_ESTORE);
  CHECK_STR_CONTAINS(tide_store_errmsg(b), "no longer this worker's");
  /* a stops beating: with a lease of 1 ms, b takes a's other item over,
  ** and a can no longer mark it done. */
  sleep_ms(20);
  CHECK_EQ_INT(tide_store_workers_alive(s, u, 5, &alive), 0);
  CHECK_EQ_INT(alive, 0);
  got = claim(b, u, wb, 10, 1, &open);
  CHECK_EQ_INT(got.count, 1);
  CHECK_EQ_INT(got.ids[0], 2);
  CHECK_EQ_INT(open, -1);
  CHECK_EQ_INT(tide_store_work_done(a, 2, wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), TIDE_ESTORE);
  /* b leaves: what it holds is a's to claim at once (the items after
  ** the last a claimed first, then the one before). */
  CHECK_EQ_INT(tide_store_worker_leave(b, wb, LIT("{}")), 0);
  CHECK_EQ_INT(tide_store_workers_alive(s, u, 60000, &alive), 0);
  CHECK_EQ_INT(alive, 1);
  got = claim(a, u, wa, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 3);
  CHECK_EQ_INT(got.ids[0], 3);
  CHECK_EQ_INT(open, -1);
  for (i = 0; i < got.count && i < 16; i++)
    CHECK_EQ_INT(tide_store_work_done(a, got.ids[i], wa), 0);
  got = claim(a, u, wa, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 1);
  CHECK_EQ_INT(got.ids[0], 2);
  CHECK_EQ_INT(tide_store_work_done(a, 2, wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  got = claim(a, u, wa, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 0);
  CHECK_EQ_INT(open, 0);
  memset(&k, 0, sizeof k);
  CHECK_EQ_INT(tide_store_worker_each(s, u, see_worker, &k), 0);
  CHECK_EQ_INT(k.count, 2);
  CHECK_EQ_INT(k.done[0], 5);
  CHECK_EQ_INT(k.done[1], 0);
  CHECK_EQ_INT(k.left[1], 1);
  CHECK_EQ_INT(tide_store_update_set(s, u, TIDE_UPDATE_FINISHED, NULL, 0), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_update_current(a, app, &cur, &state, &info,
                                         &info_len), TIDE_ENOTFOUND);
  /* A finished update's items are gone; its workers keep their counts. */
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM work_items"), 0);
  memset(&k, 0, sizeof k);
  CHECK_EQ_INT(tide_store_worker_each(s, u, see_worker, &k), 0);
  CHECK_EQ_INT(k.done[0], 5);
  /* So are those of an update left open, once the next one opens. */
  CHECK_EQ_INT(tide_store_update_open(s, app, &u), 0);
  CHECK_EQ_INT(tide_store_work_add(s, u, LIT("/f/y"), LIT("item")), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM work_items"), 1);
  CHECK_EQ_INT(tide_store_update_open(s, app, &cur), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK(cur > u);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM work_items"), 0);
  tide_store_close(a);
  tide_store_close(b);
  tide_store_close(s);
  tmp_close(&t);
}

/* The log of shared updates keeps each app's latest TIDE_STORE_LOG_KEPT,
** finished ones only going, with their workers and their counts. */
static void test_pg_log_kept(void) {
  Tmp t;
  tide_Store *s;
  int64_t app, u = 0, first = 0, w;
  int i;
  tmp_init(&t, "unused");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &app, NULL), 0);
  for (i = 0; i < TIDE_STORE_LOG_KEPT + 10; i++) {
    CHECK_EQ_INT(tide_store_update_open(s, app, &u), 0);
    if (i == 0) first = u;
    CHECK_EQ_INT(tide_store_worker_join(s, u, LIT("here"), 11, &w), 0);
    CHECK_EQ_INT(tide_store_worker_count(s, w, LIT("components.added"), 3),
                 0);
    /* The last but one is left open: it is ended, not dropped. */
    if (i != TIDE_STORE_LOG_KEPT + 8)
      CHECK_EQ_INT(tide_store_update_set(s, u, TIDE_UPDATE_FINISHED, NULL,
                                         0), 0);
    CHECK_EQ_INT(tide_store_flush(s), 0);
  }
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM updates"),
               TIDE_STORE_LOG_KEPT);
  CHECK_EQ_INT(sql_int(t.path, "SELECT min(id) FROM updates"),
               u - TIDE_STORE_LOG_KEPT + 1);
  CHECK(u - TIDE_STORE_LOG_KEPT + 1 > first);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM workers"),
               TIDE_STORE_LOG_KEPT);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM worker_counts"),
               TIDE_STORE_LOG_KEPT);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM workers w WHERE NOT"
                               " EXISTS (SELECT 1 FROM updates u"
                               " WHERE u.id = w.update_id)"), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM updates"
                               " WHERE state < 2"), 0);
  tide_store_close(s);
  tmp_close(&t);
}

/* Whether fd becomes readable within ms. */
static int readable_within(int fd, int ms) {
  struct pollfd p;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* A claim sent and read later: its answer makes the socket readable; a
** call of the store in between reads it first and keeps the items for
** the claim's read; a claim that finds none says so, and the next claim
** goes on after the last item claimed; a SQLite store refuses it. */
static void test_pg_claim_later(void) {
  Tmp t;
  tide_Store *s, *a;
  Claimed got;
  int64_t app, u, wa, open = -1;
  int fd, count = -1;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 5, NULL, &app, &u);
  a = open_ok(t.path, TIDE_STORE_SHARED);
  CHECK_EQ_INT(tide_store_worker_join(a, u, LIT("here"), 11, &wa), 0);
  CHECK_EQ_INT(tide_store_claim_socket(a), -1);
  CHECK_EQ_INT(tide_store_claim_send(a, u, wa, 2), 0);
  fd = tide_store_claim_socket(a);
  CHECK(fd >= 0);
  CHECK(readable_within(fd, 5000));
  memset(&got, 0, sizeof got);
  CHECK_EQ_INT(tide_store_claim_read(a, see_item, &got, &count), 0);
  CHECK_EQ_INT(count, 2);
  CHECK_EQ_INT(got.count, 2);
  CHECK_EQ_INT(got.ids[0], 1);
  CHECK_EQ_INT(got.ids[1], 2);
  CHECK_EQ_INT(tide_store_claim_socket(a), -1);
  /* Committed when it was read: another session sees them held. */
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM work_items"
                               " WHERE worker_id IS NOT NULL"), 2);
  /* Read by the next call of the store, which needs the connection. */
  CHECK_EQ_INT(tide_store_claim_send(a, u, wa, 2), 0);
  CHECK_EQ_INT(tide_store_work_done(a, 1, wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  CHECK_EQ_INT(tide_store_claim_socket(a), -1);
  memset(&got, 0, sizeof got);
  CHECK_EQ_INT(tide_store_claim_read(a, see_item, &got, &count), 0);
  CHECK_EQ_INT(count, 2);
  CHECK_EQ_INT(got.ids[0], 3);
  CHECK_EQ_INT(got.ids[1], 4);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM work_items"
                               " WHERE state = 2"), 1);
  /* The last item, then none: the claim goes on after the last. */
  CHECK_EQ_INT(tide_store_claim_send(a, u, wa, 10), 0);
  memset(&got, 0, sizeof got);
  CHECK_EQ_INT(tide_store_claim_read(a, see_item, &got, &count), 0);
  CHECK_EQ_INT(count, 1);
  CHECK_EQ_INT(got.ids[0], 5);
  CHECK_EQ_INT(tide_store_claim_send(a, u, wa, 10), 0);
  memset(&got, 0, sizeof got);
  CHECK_EQ_INT(tide_store_claim_read(a, see_item, &got, &count), 0);
  CHECK_EQ_INT(count, 0);
  got = claim(a, u, wa, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 0);
  CHECK_EQ_INT(open, 4);
  /* A claim read twice finds no answer the second time. */
  CHECK_EQ_INT(tide_store_claim_read(a, see_item, &got, &count), TIDE_ESTORE);
  CHECK_STR_CONTAINS(tide_store_errmsg(a), "no result");
  tide_store_close(a);
  tide_store_close(s);
  tmp_close(&t);
}

/* An item its worker ran but must still finish is neither open nor
** claimable, even once the worker's lease runs out; its worker marks it
** done (counted once), or, once no worker is left, the lead makes such
** items ready again. */
static void test_pg_work_ran(void) {
  Tmp t;
  tide_Store *s, *a, *b;
  Claimed got;
  Workers k;
  int64_t app, u, wa, wb, open = -1, n = -1;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 3, NULL, &app, &u);
  a = open_ok(t.path, TIDE_STORE_SHARED);
  b = open_ok(t.path, TIDE_STORE_SHARED);
  CHECK_EQ_INT(tide_store_worker_join(a, u, LIT("here"), 1, &wa), 0);
  CHECK_EQ_INT(tide_store_worker_join(b, u, LIT("there"), 2, &wb), 0);
  got = claim(a, u, wa, 3, 60000, &open);
  CHECK_EQ_INT(got.count, 3);
  CHECK_EQ_INT(tide_store_work_ran(a, 1, wa), 0);
  CHECK_EQ_INT(tide_store_work_done(a, 2, wa), 0);
  CHECK_EQ_INT(tide_store_work_ran(a, 3, wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  CHECK_EQ_INT(tide_store_work_open(s, u, &open), 0);
  CHECK_EQ_INT(open, 0);
  /* Only its worker finishes it. */
  CHECK_EQ_INT(tide_store_work_done(b, 1, wb), 0);
  CHECK_EQ_INT(tide_store_flush(b), TIDE_ESTORE);
  CHECK_EQ_INT(tide_store_work_done(a, 1, wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  memset(&k, 0, sizeof k);
  CHECK_EQ_INT(tide_store_worker_each(s, u, see_worker, &k), 0);
  CHECK_EQ_INT(k.done[0], 2);
  /* a dies with item 3 run: no claim takes it, however old a's lease. */
  sleep_ms(20);
  got = claim(b, u, wb, 10, 1, &open);
  CHECK_EQ_INT(got.count, 0);
  CHECK_EQ_INT(open, 0);
  CHECK_EQ_INT(tide_store_work_reopen(s, u, &n), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(n, 1);
  got = claim(b, u, wb, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 1);
  CHECK_EQ_INT(got.ids[0], 3);
  CHECK_EQ_INT(tide_store_work_done(b, 3, wb), 0);
  CHECK_EQ_INT(tide_store_flush(b), 0);
  CHECK_EQ_INT(tide_store_work_reopen(s, u, &n), 0);
  CHECK_EQ_INT(n, 0);
  memset(&k, 0, sizeof k);
  CHECK_EQ_INT(tide_store_worker_each(s, u, see_worker, &k), 0);
  CHECK_EQ_INT(k.done[0], 2);
  CHECK_EQ_INT(k.done[1], 1);
  tide_store_close(a);
  tide_store_close(b);
  tide_store_close(s);
  tmp_close(&t);
}

/* What tide_store_worker_counts hands over: up to 4 counts. */
typedef struct {
  int count;
  int64_t worker[4], n[4];
  char name[4][32];
  size_t name_len[4];
} Counts;

static int see_count(void *arg, int64_t worker_id, const char *name,
                     size_t name_len, int64_t n) {
  Counts *c = arg;
  if (c->count < 4 && name_len <= sizeof c->name[0]) {
    c->worker[c->count] = worker_id;
    memcpy(c->name[c->count], name, name_len);
    c->name_len[c->count] = name_len;
    c->n[c->count] = n;
  }
  c->count++;
  return 0;
}

/* A memo entry of app, function "f", whose value is the byte at value. */
static void one_byte_memo(tide_StoreMemo *m, int64_t app,
                          const uint8_t *value) {
  memset(m, 0, sizeof *m);
  m->app_id = app;
  SET_STR(m->fn_name, "f");
  m->value_len = 1;
  m->value = value;
}

/* Two processes record the same memo entries in one batch each, in
** opposite orders, with a read between their two entries: had each
** upserted its first entry at the read, each commit would wait for an
** entry the other holds, and the server would roll one back (a
** deadlock). A batch's entries go at its commit, in key order, so both
** commit. */
static void test_pg_memos_alike(void) {
  Tmp t;
  tide_Store *s, *a, *b;
  tide_StoreMemo m, got;
  uint8_t k1[TIDE_FP_SIZE], k2[TIDE_FP_SIZE], va = 'a', vb = 'b', first;
  int64_t app, u, cur;
  const void *info;
  size_t info_len;
  int state;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 0, NULL, &app, &u);
  a = open_ok(t.path, TIDE_STORE_SHARED);
  b = open_ok(t.path, TIDE_STORE_SHARED);
  memset(k1, 1, sizeof k1);
  memset(k2, 2, sizeof k2);
  one_byte_memo(&m, app, &va);
  m.key = k2;
  CHECK_EQ_INT(tide_store_memo_put(a, &m), 0);
  CHECK_EQ_INT(tide_store_update_current(a, app, &cur, &state, &info,
                                         &info_len), 0);
  m.value = &vb;
  m.key = k1;
  CHECK_EQ_INT(tide_store_memo_put(b, &m), 0);
  CHECK_EQ_INT(tide_store_update_current(b, app, &cur, &state, &info,
                                         &info_len), 0);
  m.value = &va;
  CHECK_EQ_INT(tide_store_memo_put(a, &m), 0);
  m.value = &vb;
  m.key = k2;
  CHECK_EQ_INT(tide_store_memo_put(b, &m), 0);
  /* Both commits under way at once: b's waits for a's. */
  CHECK_EQ_INT(tide_store_flush_send(a), 0);
  CHECK_EQ_INT(tide_store_flush_send(b), 0);
  CHECK_EQ_INT(tide_store_flush_wait(a), 0);
  CHECK_EQ_INT(tide_store_flush_wait(b), 0);
  CHECK_EQ_INT(tide_store_batches_lost(a) + tide_store_batches_lost(b), 0);
  /* One batch waited for the other, whose entries its own replaced:
  ** both entries hold one batch's values. */
  CHECK_EQ_INT(tide_store_memo_get(s, app, k1, &got), 0);
  CHECK_EQ_INT(got.value_len, 1);
  first = *(const uint8_t *)got.value;
  CHECK(first == 'a' || first == 'b');
  CHECK_EQ_INT(tide_store_memo_get(s, app, k2, &got), 0);
  CHECK(blob_equal(got.value, got.value_len, &first, 1));
  CHECK_EQ_INT(tide_store_close(a), 0);
  CHECK_EQ_INT(tide_store_close(b), 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

/* Store b's side of test_pg_memos_early, in a thread of its own: an
** entry sent early (the delete of another entry sends it), a read, which
** waits for the server, then a second entry and the commit. */
typedef struct {
  tide_Store *s;
  int64_t app;
  int rc[4];
  int read_done; /* set by the thread, atomically */
} EarlySide;

static void *early_side(void *arg) {
  EarlySide *e = arg;
  tide_StoreMemo m;
  uint8_t k1[TIDE_FP_SIZE], k2[TIDE_FP_SIZE], k9[TIDE_FP_SIZE], vb = 'b';
  int64_t cur;
  const void *info;
  size_t info_len;
  int state;
  memset(k1, 1, sizeof k1);
  memset(k2, 2, sizeof k2);
  memset(k9, 9, sizeof k9);
  one_byte_memo(&m, e->app, &vb);
  m.key = k1;
  e->rc[0] = tide_store_memo_put(e->s, &m);
  e->rc[1] = tide_store_memo_delete(e->s, e->app, k9);
  e->rc[2] = tide_store_update_current(e->s, e->app, &cur, &state, &info,
                                       &info_len);
  __atomic_store_n(&e->read_done, 1, __ATOMIC_SEQ_CST);
  m.key = k2;
  if (e->rc[0] == 0) e->rc[0] = tide_store_memo_put(e->s, &m);
  e->rc[3] = tide_store_flush(e->s);
  return NULL;
}

/* Two processes each send a memo entry before their commit (a delete of
** another entry makes them go), the other's entry at the commit: had
** both held their first entry at once, each commit would wait for the
** other's (a deadlock, which the server ends by rolling one back). The
** batch that sends entries early takes the memo lock alone, so the
** second waits for the first's end before it holds any entry. */
static void test_pg_memos_early(void) {
  Tmp t;
  tide_Store *s, *a;
  tide_StoreMemo m, got;
  EarlySide b;
  pthread_t thread;
  uint8_t k1[TIDE_FP_SIZE], k2[TIDE_FP_SIZE], k8[TIDE_FP_SIZE], va = 'a';
  int64_t app, u, cur;
  const void *info;
  size_t info_len;
  int state, i, waited = 0;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 0, NULL, &app, &u);
  a = open_ok(t.path, TIDE_STORE_SHARED);
  memset(&b, 0, sizeof b);
  b.s = open_ok(t.path, TIDE_STORE_SHARED);
  b.app = app;
  memset(k1, 1, sizeof k1);
  memset(k2, 2, sizeof k2);
  memset(k8, 8, sizeof k8);
  one_byte_memo(&m, app, &va);
  m.key = k2;
  CHECK_EQ_INT(tide_store_memo_put(a, &m), 0);
  CHECK_EQ_INT(tide_store_memo_delete(a, app, k8), 0);
  CHECK_EQ_INT(tide_store_update_current(a, app, &cur, &state, &info,
                                         &info_len), 0);
  /* a holds its first entry; b's early entry waits for a's end. */
  CHECK_EQ_INT(pthread_create(&thread, NULL, early_side, &b), 0);
  for (i = 0; i < 50 && !waited; i++) {
    sleep_ms(10);
    waited = __atomic_load_n(&b.read_done, __ATOMIC_SEQ_CST);
  }
  CHECK_EQ_INT(waited, 0);
  m.key = k1;
  CHECK_EQ_INT(tide_store_memo_put(a, &m), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  CHECK_EQ_INT(pthread_join(thread, NULL), 0);
  for (i = 0; i < 4; i++) CHECK_EQ_INT(b.rc[i], 0);
  CHECK_EQ_INT(tide_store_batches_lost(a) + tide_store_batches_lost(b.s), 0);
  /* b committed after a: its values hold. */
  CHECK_EQ_INT(tide_store_memo_get(s, app, k1, &got), 0);
  CHECK(blob_equal(got.value, got.value_len, "b", 1));
  CHECK_EQ_INT(tide_store_memo_get(s, app, k2, &got), 0);
  CHECK(blob_equal(got.value, got.value_len, "b", 1));
  CHECK_EQ_INT(tide_store_close(a), 0);
  CHECK_EQ_INT(tide_store_close(b.s), 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

/* A worker's counts go with the batch that records what they count: a
** batch rolled back takes its counts with it; names are bytes. */
static void test_pg_worker_counts(void) {
  Tmp t;
  tide_Store *s, *a, *b;
  Counts c;
  int64_t app, u, u2, wa, wb, wc;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 4, NULL, &app, &u);
  a = open_ok(t.path, TIDE_STORE_SHARED);
  b = open_ok(t.path, TIDE_STORE_SHARED);
  CHECK_EQ_INT(tide_store_worker_join(a, u, LIT("here"), 1, &wa), 0);
  CHECK_EQ_INT(tide_store_worker_join(b, u, LIT("there"), 2, &wb), 0);
  /* Summed within a batch and across batches. */
  CHECK_EQ_INT(tide_store_worker_count(a, wa, LIT("components.added"), 2),
               0);
  CHECK_EQ_INT(tide_store_worker_count(a, wa, LIT("components.added"), 3),
               0);
  CHECK_EQ_INT(tide_store_worker_count(a, wa, "functions.calls.x\0y", 17,
                                       4), 0);
  CHECK_EQ_INT(tide_store_worker_count(b, wb, LIT("components.added"), 1),
               0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  CHECK_EQ_INT(tide_store_flush(b), 0);
  CHECK_EQ_INT(tide_store_worker_count(a, wa, LIT("components.added"), 10),
               0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  /* Not committed: not counted. */
  CHECK_EQ_INT(tide_store_worker_count(a, wa, LIT("components.added"), 100),
               0);
  CHECK_EQ_INT(tide_store_rollback(a), 0);
  /* Another update's workers are not this one's. */
  CHECK_EQ_INT(tide_store_update_set(s, u, TIDE_UPDATE_FINISHED, NULL, 0),
               0);
  CHECK_EQ_INT(tide_store_update_open(s, app, &u2), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_worker_join(b, u2, LIT("there"), 2, &wc), 0);
  CHECK_EQ_INT(tide_store_worker_count(b, wc, LIT("components.added"), 1000),
               0);
  CHECK_EQ_INT(tide_store_flush(b), 0);
  memset(&c, 0, sizeof c);
  CHECK_EQ_INT(tide_store_worker_counts(s, u, see_count, &c), 0);
  CHECK_EQ_INT(c.count, 3);
  CHECK_EQ_INT(c.worker[0], wa);
  CHECK(blob_equal(c.name[0], c.name_len[0], "components.added", 16));
  CHECK_EQ_INT(c.n[0], 15);
  CHECK_EQ_INT(c.worker[1], wa);
  CHECK(blob_equal(c.name[1], c.name_len[1], "functions.calls.x\0y", 17));
  CHECK_EQ_INT(c.n[1], 4);
  CHECK_EQ_INT(c.worker[2], wb);
  CHECK_EQ_INT(c.n[2], 1);
  memset(&c, 0, sizeof c);
  CHECK_EQ_INT(tide_store_worker_counts(s, u2, see_count, &c), 0);
  CHECK_EQ_INT(c.count, 1);
  CHECK_EQ_INT(c.n[0], 1000);
  tide_store_close(a);
  tide_store_close(b);
  tide_store_close(s);
  tmp_close(&t);
}

/* A version 2 store (claimed items in state 1, an index of items by
** worker, no done counts) is read by no one until a writer opens it,
** which upgrades it in one transaction: its claims, done counts and
** leases carry over. */
static void test_pg_upgrade(void) {
  Tmp t;
  tide_Store *s, *a;
  Claimed got;
  Workers k;
  char msg[768], text[64];
  int64_t app, u, wa, open = -1;
  int i;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 4, NULL, &app, &u);
  a = open_ok(t.path, TIDE_STORE_SHARED);
  CHECK_EQ_INT(tide_store_worker_join(a, u, LIT("here"), 1, &wa), 0);
  got = claim(a, u, wa, 2, 60000, &open);
  CHECK_EQ_INT(got.count, 2);
  CHECK_EQ_INT(tide_store_work_done(a, got.ids[0], wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  tide_store_close(a);
  tide_store_close(s);
  /* As version 2 wrote it: the item claimed and not done in state 1. */
  CHECK_EQ_INT(sql_exec(t.path,
                        "UPDATE work_items SET state = 1 WHERE state = 0"
                        " AND worker_id IS NOT NULL;"
                        "ALTER TABLE workers DROP COLUMN done;"
                        "CREATE INDEX work_items_worker"
                        " ON work_items(worker_id);"
                        "ALTER TABLE work_items RESET (fillfactor);"
                        "INSERT INTO updates(id, app_id, state, started_ns)"
                        " VALUES(100, 1, 2, 0);"
                        "INSERT INTO work_items(update_id, path, state)"
                        " VALUES(100, 'kept by version 2', 2);"
                        "DROP TABLE worker_counts;"
                        "UPDATE meta SET value = '2'"
                        " WHERE key = 'version'"), SQLITE_OK);
  snprintf(msg, sizeof msg, "%s: state store format version 2 is older "
           "than this tide's (4): an update with this tide upgrades it",
           t.path);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_EVERSION, msg);
  check_open_fails(t.path, TIDE_STORE_SHARED, TIDE_EVERSION, msg);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "4");
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM worker_counts"), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM pg_indexes WHERE"
                       " schemaname = current_schema()"
                       " AND indexname = 'work_items_worker'"), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM pg_class WHERE"
                       " relname = 'work_items' AND relnamespace ="
                       " current_schema()::regnamespace AND"
                       " 'fillfactor=50' = ANY(reloptions)"), 1);
  /* The finished update's items are gone, the one under way's kept. */
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM work_items"
                       " WHERE update_id = 100"), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM work_items"), 4);
  memset(&k, 0, sizeof k);
  CHECK_EQ_INT(tide_store_worker_each(s, u, see_worker, &k), 0);
  CHECK_EQ_INT(k.count, 1);
  CHECK_EQ_INT(k.done[0], 1);
  CHECK_EQ_INT(k.claimed[0], 1);
  /* The worker still holds its item (only it can mark it done), and the
  ** two ready ones are claimed as before. */
  a = open_ok(t.path, TIDE_STORE_SHARED);
  got = claim(a, u, wa, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 2);
  CHECK_EQ_INT(tide_store_work_done(a, 2, wa), 0);
  for (i = 0; i < got.count; i++)
    CHECK_EQ_INT(tide_store_work_done(a, got.ids[i], wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  CHECK_EQ_INT(tide_store_work_open(s, u, &open), 0);
  CHECK_EQ_INT(open, 0);
  memset(&k, 0, sizeof k);
  CHECK_EQ_INT(tide_store_worker_each(s, u, see_worker, &k), 0);
  CHECK_EQ_INT(k.done[0], 4);
  CHECK_EQ_INT(k.claimed[0], 0);
  tide_store_close(a);
  tide_store_close(s);
  tmp_close(&t);
}

/* A version 3 store (no worker_counts) is upgraded by a writer: its
** workers' counts are kept from then on. */
static void test_pg_upgrade_3(void) {
  Tmp t;
  tide_Store *s, *a;
  Counts c;
  char msg[768], text[64];
  int64_t app, u, wa;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 2, NULL, &app, &u);
  tide_store_close(s);
  CHECK_EQ_INT(sql_exec(t.path, "DROP TABLE worker_counts;"
                        "UPDATE meta SET value = '3'"
                        " WHERE key = 'version'"), SQLITE_OK);
  snprintf(msg, sizeof msg, "%s: state store format version 3 is older "
           "than this tide's (4): an update with this tide upgrades it",
           t.path);
  check_open_fails(t.path, TIDE_STORE_SHARED, TIDE_EVERSION, msg);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "4");
  a = open_ok(t.path, TIDE_STORE_SHARED);
  CHECK_EQ_INT(tide_store_worker_join(a, u, LIT("here"), 1, &wa), 0);
  CHECK_EQ_INT(tide_store_worker_count(a, wa, LIT("targets.inserted"), 2),
               0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  memset(&c, 0, sizeof c);
  CHECK_EQ_INT(tide_store_worker_counts(s, u, see_count, &c), 0);
  CHECK_EQ_INT(c.count, 1);
  CHECK_EQ_INT(c.n[0], 2);
  tide_store_close(a);
  tide_store_close(s);
  tmp_close(&t);
}

/* A worker's heartbeat renews its lease while it works; stopped, the
** lease runs out and its items go to another. */
static void test_pg_beat(void) {
  Tmp t;
  tide_Store *s, *a, *b;
  tide_StoreBeat *beat = NULL;
  Claimed got;
  int64_t app, u, wa, wb, open;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 1, NULL, &app, &u);
  a = open_ok(t.path, TIDE_STORE_SHARED);
  b = open_ok(t.path, TIDE_STORE_SHARED);
  CHECK_EQ_INT(tide_store_worker_join(a, u, LIT("here"), 1, &wa), 0);
  CHECK_EQ_INT(tide_store_worker_join(b, u, LIT("there"), 2, &wb), 0);
  got = claim(a, u, wa, 1, 60000, &open);
  CHECK_EQ_INT(got.count, 1);
  CHECK_EQ_INT(tide_store_beat_start(a, wa, 10, &beat), 0);
  sleep_ms(1000);
  /* a's thread beats every 10 ms: a lease of 500 ms holds after a
  ** second (and would not without it). */
  got = claim(b, u, wb, 1, 500, &open);
  CHECK_EQ_INT(got.count, 0);
  tide_store_beat_stop(beat);
  sleep_ms(1000);
  got = claim(b, u, wb, 1, 500, &open);
  CHECK_EQ_INT(got.count, 1);
  tide_store_beat_stop(NULL);
  tide_store_close(a);
  tide_store_close(b);
  tide_store_close(s);
  tmp_close(&t);
}

/* On PostgreSQL only. */
static const CheckTest pg_tests[] = {
  { "schema created, read and reopened", test_pg_schema },
  { "schemas that are not stores refused", test_pg_refused },
  { "the password never shown", test_pg_password },
  { "keyword=value locations", test_pg_keywords },
  { "work items shared by workers", test_pg_work },
  { "a claim read once its answer is in", test_pg_claim_later },
  { "a worker's heartbeat", test_pg_beat },
  { "a version 2 store upgraded", test_pg_upgrade },
  { "a version 3 store upgraded", test_pg_upgrade_3 },
  { "a worker's counts committed with its batches", test_pg_worker_counts },
  { "work items run, finished by their worker or reopened",
    test_pg_work_ran },
  { "the log of updates keeps the latest", test_pg_log_kept },
  { "memo entries two processes record alike", test_pg_memos_alike },
  { "memo entries two processes send early", test_pg_memos_early },
  { NULL, NULL },
};

int main(void) {
  if (!pg_base())
    printf("store on PostgreSQL: skipped, TIDE_TEST_PG names no database"
           " (scripts/run-tests.sh runs it on a server of its own)\n");
  return store_suite("store on PostgreSQL", NULL, NULL, pg_tests);
}
