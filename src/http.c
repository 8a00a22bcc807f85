/*
** HTTP on a libuv loop through curl's multi interface (see http.h).
*/
#include <stdio.h>
#include <string.h>

#include "curl_api.h"
#include "http.h"

typedef struct Socket Socket;

struct tide_Http {
  tide_Alloc alloc;
  void *ud;
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;        /* curl's one timer */
  Socket *sockets;         /* the sockets watched, a list */
  tide_HttpRequest *requests; /* under way, a list */
  size_t running;
  int handles;             /* the timer and the polls not closed yet */
  int closing;             /* tide_http_free was called */
};

struct Socket {
  uv_poll_t poll;
  tide_Http *http;
  curl_socket_t fd;
  Socket *prev, *next;
};

/* curl's message buffer is the request's message. */
typedef char message_fits[sizeof ((tide_HttpRequest *)0)->message >=
                          CURL_ERROR_SIZE ? 1 : -1];

/* ---- the client's handles ---- */

static void free_if_closed(tide_Http *h) {
  if (h->closing && h->handles == 0) h->alloc(h->ud, h, sizeof *h, 0);
}

static void timer_closed(uv_handle_t *handle) {
  tide_Http *h = handle->data;
  h->handles--;
  free_if_closed(h);
}

static void socket_closed(uv_handle_t *handle) {
  Socket *s = handle->data;
  tide_Http *h = s->http;
  h->alloc(h->ud, s, sizeof *s, 0);
  h->handles--;
  free_if_closed(h);
}

static void unwatch(tide_Http *h, Socket *s) {
  if (s->prev) s->prev->next = s->next; else h->sockets = s->next;
  if (s->next) s->next->prev = s->prev;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, socket_closed);
}

/* ---- transfers ending ---- */

static void unlink_request(tide_Http *h, tide_HttpRequest *r) {
  if (r->prev) r->prev->next = r->next; else h->requests = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
  r->http = NULL;
  h->running--;
}

static int kind_of(const tide_HttpRequest *r, CURLcode rc) {
  switch (rc) {
  case CURLE_OK: return TIDE_HTTP_OK;
  case CURLE_OPERATION_TIMEDOUT: return TIDE_HTTP_TIMEOUT;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT: return TIDE_HTTP_CONNECT;
  case CURLE_GOT_NOTHING:
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_PARTIAL_FILE:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM: return TIDE_HTTP_RESET;
  case CURLE_FILESIZE_EXCEEDED: return TIDE_HTTP_TOO_LARGE;
  case CURLE_WRITE_ERROR:
    return r->over_size ? TIDE_HTTP_TOO_LARGE : TIDE_HTTP_OTHER;
  default: return TIDE_HTTP_OTHER;
  }
}

static void finish(tide_HttpRequest *r, CURLcode rc) {
  long status = 0;
  r->result = (int)rc;
  r->kind = kind_of(r, rc);
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  r->status = status;
  if (r->kind == TIDE_HTTP_TOO_LARGE)
    snprintf(r->message, sizeof r->message,
             "the response is larger than %zu bytes (max_size)", r->max_size);
  else if (rc != CURLE_OK && r->message[0] == '\0')
    snprintf(r->message, sizeof r->message, "%s", curl_easy_strerror(rc));
  r->done(r);
}

/* Hands every finished transfer to its request. */
static void check_done(tide_Http *h) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
    tide_HttpRequest *r = NULL;
    CURLcode rc;
    if (msg->msg != CURLMSG_DONE) continue;
    rc = msg->data.result;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    curl_multi_remove_handle(h->multi, msg->easy_handle); /* msg is gone */
    unlink_request(h, r);
    finish(r, rc);
  }
}

/* ---- what the loop reports to curl ---- */

static void on_poll(uv_poll_t *p, int status, int events) {
  Socket *s = p->data;
  tide_Http *h = s->http;
  int flags = 0, running;
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  /* s may be closed by the call (CURL_POLL_REMOVE). */
  curl_multi_socket_action(h->multi, s->fd, flags, &running);
  check_done(h);
}

static void on_timer(uv_timer_t *t) {
  tide_Http *h = t->data;
  int running;
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(h);
}

/* ---- what curl asks of the loop ---- */

static int on_socket(CURL *easy, curl_socket_t fd, int action, void *userp,
                     void *socketp) {
  tide_Http *h = userp;
  Socket *s = socketp;
  int events = 0;
  (void)easy;
  if (action == CURL_POLL_REMOVE) {
    if (s != NULL) {
      curl_multi_assign(h->multi, fd, NULL);
      unwatch(h, s);
    }
    return 0;
  }
  if (s == NULL) {
    s = h->alloc(h->ud, NULL, 0, sizeof *s);
    if (s == NULL) return -1; /* curl fails the transfer */
    memset(s, 0, sizeof *s);
    if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
      h->alloc(h->ud, s, sizeof *s, 0);
      return -1;
    }
    s->poll.data = s;
    s->http = h;
    s->fd = fd;
    s->next = h->sockets;
    if (h->sockets) h->sockets->prev = s;
    h->sockets = s;
    h->handles++;
    curl_multi_assign(h->multi, fd, s);
  }
  if (action & CURL_POLL_IN) events |= UV_READABLE;
  if (action & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

static int on_timer_change(CURLM *multi, long ms, void *userp) {
  tide_Http *h = userp;
  (void)multi;
  if (ms < 0)
    uv_timer_stop(&h->timer);
  else {
    /* libcurl's ms count from now, not from the loop's cached time. */
    uv_update_time(h->timer.loop);
    uv_timer_start(&h->timer, on_timer, (uint64_t)ms, 0);
  }
  return 0;
}

/* ---- the client ---- */

int tide_http_ready(const char **message) {
  return tide_curl_need(message) == 0 ? 0 : TIDE_EIO;
}

int tide_http_new(tide_Http **out, uv_loop_t *loop, tide_Alloc alloc,
                  void *ud) {
  const char *why;
  tide_Http *h;
  *out = NULL;
  if (tide_curl_need(&why) != 0) return TIDE_EIO;
  h = alloc(ud, NULL, 0, sizeof *h);
  if (h == NULL) return TIDE_ENOMEM;
  memset(h, 0, sizeof *h);
  h->alloc = alloc;
  h->ud = ud;
  h->loop = loop;
  h->multi = curl_multi_init();
  if (h->multi == NULL) {
    alloc(ud, h, sizeof *h, 0);
    return TIDE_EIO;
  }
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  h->handles = 1;
  *out = h;
  return 0;
}

void tide_http_free(tide_Http *h) {
  if (h == NULL) return;
  while (h->requests != NULL) tide_http_cancel(h->requests);
  /* curl closes its connections: their sockets are let go (REMOVE). */
  curl_multi_cleanup(h->multi);
  h->multi = NULL;
  while (h->sockets != NULL) unwatch(h, h->sockets);
  h->closing = 1;
  uv_timer_stop(&h->timer);
  uv_close((uv_handle_t *)&h->timer, timer_closed);
}

size_t tide_http_running(const tide_Http *h) { return h->running; }

/* ---- requests ---- */

static size_t on_body(char *p, size_t size, size_t n, void *userp) {
  tide_HttpRequest *r = userp;
  size_t len = size * n;
  if (r->max_size > 0 && len > r->max_size - r->body.len) {
    r->over_size = 1;
    return 0; /* CURLE_WRITE_ERROR */
  }
  return tide_buf_append(&r->body, p, len) == 0 ? len : 0;
}

/* Keeps the header lines of the last response only: a status line starts
** a new one (after a redirect or a 100 Continue). */
static size_t on_header(char *p, size_t size, size_t n, void *userp) {
  tide_HttpRequest *r = userp;
  size_t len = size * n;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) r->head.len = 0;
  return tide_buf_append(&r->head, p, len) == 0 ? len : 0;
}

static int set_method(tide_HttpRequest *r, const tide_HttpOptions *o) {
  CURL *e = r->easy;
  const char *m = o->method ? o->method : "GET";
  if (m[0] == '\0' || strpbrk(m, " \t\r\n") != NULL) {
    snprintf(r->message, sizeof r->message, "method %s is not a method", m);
    return TIDE_EINVAL;
  }
  if (o->body != NULL) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
    if (curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body) != CURLE_OK)
      return TIDE_ENOMEM;
    if (strcmp(m, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
  } else if (strcmp(m, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (strcmp(m, "GET") != 0) {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
  }
  return 0;
}

int tide_http_request_init(tide_HttpRequest *r, const tide_HttpOptions *o,
                           tide_Alloc alloc, void *ud) {
  struct curl_slist *list = NULL;
  const char *why;
  CURL *e;
  int rc;
  size_t i;
  memset(r, 0, sizeof *r);
  tide_buf_init(&r->body, alloc, ud);
  tide_buf_init(&r->head, alloc, ud);
  r->max_size = o->max_size;
  if (tide_curl_need(&why) != 0) {
    snprintf(r->message, sizeof r->message, "%s", why);
    return TIDE_EIO;
  }
  e = r->easy = curl_easy_init();
  if (e == NULL) return TIDE_ENOMEM;
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->message);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_USERAGENT, "tide/" TIDE_VERSION);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  if (curl_easy_setopt(e, CURLOPT_URL, o->url) != CURLE_OK) {
    snprintf(r->message, sizeof r->message, "the URL is not one curl reads");
    return TIDE_EINVAL;
  }
  if ((rc = set_method(r, o)) != 0) return rc;
  /* No "Expect: 100-continue" (and its wait) before a large body. */
  list = curl_slist_append(list, "Expect:");
  if (list == NULL) return TIDE_ENOMEM;
  r->headers = list;
  for (i = 0; o->headers && o->headers[i]; i++) {
    struct curl_slist *more = curl_slist_append(list, o->headers[i]);
    if (more == NULL) return TIDE_ENOMEM;
    list = more;
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
  if (o->timeout > 0)
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(o->timeout * 1000 + 0.5));
  if (o->connect_timeout > 0)
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(o->connect_timeout * 1000 + 0.5));
  if (o->max_size > 0)
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_size);
  if (o->follow) {
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  }
  return 0;
}

int tide_http_start(tide_Http *h, tide_HttpRequest *r) {
  r->message[0] = '\0';
  if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK)
    return TIDE_ENOMEM;
  r->http = h;
  r->prev = NULL;
  r->next = h->requests;
  if (h->requests) h->requests->prev = r;
  h->requests = r;
  h->running++;
  return 0;
}

void tide_http_cancel(tide_HttpRequest *r) {
  tide_Http *h = r->http;
  if (h == NULL) return;
  curl_multi_remove_handle(h->multi, r->easy);
  unlink_request(h, r);
  r->result = CURLE_ABORTED_BY_CALLBACK;
  r->kind = TIDE_HTTP_CANCELLED;
  snprintf(r->message, sizeof r->message, "the request was cancelled");
  r->done(r);
}

void tide_http_request_close(tide_HttpRequest *r) {
  if (r->easy) curl_easy_cleanup(r->easy);
  if (r->headers) curl_slist_free_all(r->headers);
  r->easy = r->headers = NULL;
  tide_buf_close(&r->body);
  tide_buf_close(&r->head);
}

void tide_http_url_for_message(const char *url, char *out, size_t size) {
  const char *scheme_end = strstr(url, "://");
  const char *host = scheme_end ? scheme_end + 3 : url;
  const char *end = host + strcspn(host, "/?#");
  const char *at = NULL, *p, *path_end;
  for (p = host; p < end; p++)
    if (*p == '@') at = p;
  path_end = end + strcspn(end, "?#");
  snprintf(out, size, "%.*s%.*s%.*s", (int)(host - url), url,
           (int)(end - (at ? at + 1 : host)), at ? at + 1 : host,
           (int)(path_end - end), end);
}
