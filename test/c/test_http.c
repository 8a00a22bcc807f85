/*
** The HTTP client (http.h) against a real server on 127.0.0.1, run by
** libuv in this process on the same loop: a response and its headers,
** the size cap, a request cancelled while the server keeps it waiting,
** the client freed with a request under way, and the URL shown in
** messages. Every case ends with no handle left on the loop (valgrind
** runs this test too: no leak).
*/
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "check.h"
#include "http.h"

/* ---- the server: answers "GET /ok", keeps "/hang" waiting ---- */

typedef struct {
  uv_tcp_t tcp;
  uv_write_t write;
  char buf[4096];
  size_t len;
} Conn;

static uv_tcp_t server;
static int port;
static int connections;

static const char ok_response[] =
  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Twice: a\r\n"
  "X-Twice: b\r\nContent-Length: 13\r\n\r\nhello, world\n";

static void conn_closed(uv_handle_t *h) {
  free(h->data);
  connections--;
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  Conn *c = h->data;
  (void)hint;
  b->base = c->buf + c->len;
  b->len = sizeof c->buf - c->len - 1;
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  Conn *c = s->data;
  (void)b;
  if (n < 0) {
    uv_close((uv_handle_t *)s, conn_closed);
    return;
  }
  c->len += (size_t)n;
  c->buf[c->len] = '\0';
  if (strstr(c->buf, "\r\n\r\n") && strncmp(c->buf, "GET /ok ", 8) == 0) {
    uv_buf_t out = uv_buf_init((char *)ok_response, sizeof ok_response - 1);
    c->len = 0;
    uv_write(&c->write, s, &out, 1, NULL);
  }
  /* "/hang": read and never answered. */
}

static void on_connection(uv_stream_t *s, int status) {
  Conn *c = calloc(1, sizeof *c);
  (void)status;
  uv_tcp_init(s->loop, &c->tcp);
  c->tcp.data = c;
  connections++;
  if (uv_accept(s, (uv_stream_t *)&c->tcp) == 0)
    uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
  else
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void server_start(uv_loop_t *loop) {
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int len = sizeof bound;
  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  uv_listen((uv_stream_t *)&server, 16, on_connection);
  uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len);
  port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void close_all(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, h == (uv_handle_t *)&server ? NULL
                                     : conn_closed);
}

/* Stops the server, closes what is left and checks the loop is empty. */
static void loop_end(uv_loop_t *loop) {
  uv_walk(loop, close_all, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(loop), 0);
  CHECK_EQ_INT(connections, 0);
}

/* ---- requests ---- */

static int done_calls;

static void on_done(tide_HttpRequest *r) {
  (void)r;
  done_calls++;
}

static void start(tide_Http *h, tide_HttpRequest *r, const char *path,
                  size_t max_size) {
  char url[128];
  tide_HttpOptions o;
  memset(&o, 0, sizeof o);
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  o.url = url;
  o.max_size = max_size;
  o.timeout = 10;
  CHECK_EQ_INT(tide_http_request_init(r, &o, tide_alloc_default, NULL), 0);
  r->done = on_done;
  CHECK_EQ_INT(tide_http_start(h, r), 0);
}

static void test_response(void) {
  uv_loop_t loop;
  tide_Http *h;
  tide_HttpRequest a, b;
  uv_loop_init(&loop);
  server_start(&loop);
  CHECK_EQ_INT(tide_http_new(&h, &loop, tide_alloc_default, NULL), 0);
  done_calls = 0;
  start(h, &a, "/ok", 0);
  start(h, &b, "/ok", 0);
  CHECK_EQ_INT(tide_http_running(h), 2);
  while (done_calls < 2) uv_run(&loop, UV_RUN_ONCE);
  CHECK_EQ_INT(tide_http_running(h), 0);
  CHECK_EQ_INT(a.kind, TIDE_HTTP_OK);
  CHECK_EQ_INT(a.status, 200);
  CHECK_EQ_INT(a.body.len, 13);
  CHECK(memcmp(a.body.data, "hello, world\n", 13) == 0);
  CHECK(tide_buf_push(&a.head, 0) == 0);
  CHECK_STR_CONTAINS((const char *)a.head.data, "X-Twice: b\r\n");
  CHECK_EQ_INT(b.status, 200);
  tide_http_request_close(&a);
  tide_http_request_close(&b);
  tide_http_free(h);
  loop_end(&loop);
}

static void test_size_cap(void) {
  uv_loop_t loop;
  tide_Http *h;
  tide_HttpRequest r;
  uv_loop_init(&loop);
  server_start(&loop);
  tide_http_new(&h, &loop, tide_alloc_default, NULL);
  done_calls = 0;
  start(h, &r, "/ok", 5);
  while (done_calls < 1) uv_run(&loop, UV_RUN_ONCE);
  CHECK_EQ_INT(r.kind, TIDE_HTTP_TOO_LARGE);
  CHECK_STR_CONTAINS(r.message, "larger than 5 bytes");
  tide_http_request_close(&r);
  tide_http_free(h);
  loop_end(&loop);
}

static void test_cancel_and_free(void) {
  uv_loop_t loop;
  tide_Http *h;
  tide_HttpRequest a, b;
  int i;
  uv_loop_init(&loop);
  server_start(&loop);
  tide_http_new(&h, &loop, tide_alloc_default, NULL);
  done_calls = 0;
  start(h, &a, "/hang", 0);
  start(h, &b, "/hang", 0);
  /* Both connected and sent; the server keeps them waiting. */
  for (i = 0; i < 50 && connections < 2; i++) uv_run(&loop, UV_RUN_ONCE);
  CHECK_EQ_INT(connections, 2);
  tide_http_cancel(&a);
  CHECK_EQ_INT(done_calls, 1);
  CHECK_EQ_INT(a.kind, TIDE_HTTP_CANCELLED);
  tide_http_cancel(&a); /* no longer under way: nothing */
  CHECK_EQ_INT(done_calls, 1);
  /* Freed with b under way: b ends, cancelled. */
  tide_http_free(h);
  CHECK_EQ_INT(done_calls, 2);
  CHECK_EQ_INT(b.kind, TIDE_HTTP_CANCELLED);
  tide_http_request_close(&a);
  tide_http_request_close(&b);
  loop_end(&loop);
}

static void test_url_for_message(void) {
  char out[128];
  tide_http_url_for_message("https://joe:pw@api.example.com:8443/v1/x?key=s"
                            "#frag", out, sizeof out);
  CHECK(strcmp(out, "https://api.example.com:8443/v1/x") == 0);
  tide_http_url_for_message("http://h/p@q?x=1", out, sizeof out);
  CHECK(strcmp(out, "http://h/p@q") == 0);
  tide_http_url_for_message("http://u@h", out, sizeof out);
  CHECK(strcmp(out, "http://h") == 0);
  tide_http_url_for_message("no scheme?secret", out, sizeof out);
  CHECK(strcmp(out, "no scheme") == 0);
}

int main(void) {
  static const CheckTest tests[] = {
    {"a response, its body and headers", test_response},
    {"the size cap", test_size_cap},
    {"cancel, and free with a request under way", test_cancel_and_free},
    {"the URL in messages", test_url_for_message},
    {NULL, NULL},
  };
  return check_run("http", tests);
}
