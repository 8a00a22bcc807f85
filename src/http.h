/*
** HTTP requests on a libuv loop through libcurl's multi interface (the
** integration curl documents in its multi-uv example): no thread, no
** blocking call. The loop watches each socket curl names (a uv_poll_t
** per socket, made when curl asks for it and closed when curl lets it
** go) and runs curl's single timer (a uv_timer_t); whatever they report
** is handed back to curl_multi_socket_action, and a transfer that
** finishes hands its outcome to its request's done callback.
**
** A client (tide_Http) is one curl multi handle on one loop: transfers
** that run at the same time share it, and so do their connections
** (keep-alive, HTTP/2 multiplexing) from one request to the next. The
** scheduler keeps one per session (scheduler.h), so that a model's
** server is connected to once per session, not once per call.
**
** What curl does that is not redone here: TLS (certificates checked
** against the system's store), proxies from http_proxy, https_proxy,
** all_proxy and no_proxy (curl reads them itself), HTTP/2 over TLS when
** the server offers it, redirects when follow is set, compressed
** responses (gzip, brotli, zstd: decoded before the body is kept).
**
** A request (tide_HttpRequest) is the caller's struct; it begins with a
** tide_Wait so that a task can wait on it (scheduler.h). Its lifetime:
** tide_http_request_init fills it in; tide_http_start adds it to the
** client; when the transfer ends (a response, an error, a timeout, the
** size cap) or tide_http_cancel stops it, its done callback runs once,
** from a loop callback (or from tide_http_cancel); tide_http_request_close
** frees what it holds. The outcome: result (a CURLcode: 0 for a response
** whatever its status), status (the HTTP status), the body and the raw
** header lines of the last response (those of redirects and of a 100
** Continue are dropped), and a message when result is not 0.
**
** Memory: the client and the buffers of requests come from the caller's
** allocator; curl's own from curl's. Handles are freed only in their close
** callbacks: tide_http_free closes the client's handles and frees the
** client once the loop has run their close callbacks (the caller runs the
** loop before closing it, as for every handle on it).
**
** Errors: calls return 0 or TIDE_ENOMEM / TIDE_EINVAL; nothing here exits
** or raises. A client is used by its loop's thread only.
*/
#ifndef TIDE_HTTP_H
#define TIDE_HTTP_H

#include <stddef.h>

#include <uv.h>

#include "buf.h"
#include "scheduler.h"
#include "tide.h"

typedef struct tide_Http tide_Http;
typedef struct tide_HttpRequest tide_HttpRequest;

/* How a failed transfer failed, for callers that retry some failures. */
enum {
  TIDE_HTTP_OK = 0,
  TIDE_HTTP_TIMEOUT,   /* over its timeout */
  TIDE_HTTP_CONNECT,   /* the host could not be resolved or reached */
  TIDE_HTTP_RESET,     /* the connection broke, or the server said nothing */
  TIDE_HTTP_TOO_LARGE, /* the body went over max_size */
  TIDE_HTTP_CANCELLED, /* tide_http_cancel */
  TIDE_HTTP_OTHER      /* TLS, a malformed response, out of memory, ... */
};

struct tide_HttpRequest {
  tide_Wait w;                 /* first: a task waits on the request */
  tide_Http *http;             /* while started */
  tide_HttpRequest *prev, *next; /* the client's requests under way */
  void *easy;                  /* the CURL easy handle, owned */
  void *headers;               /* a struct curl_slist, owned */
  tide_Buf body, head;         /* the response's body and header lines */
  size_t max_size;             /* the cap on the body, in bytes */
  int result;                  /* a CURLcode once done */
  int kind;                    /* TIDE_HTTP_* once done */
  int over_size;               /* the body went over max_size */
  long status;                 /* the HTTP status, 0 without a response */
  void (*done)(tide_HttpRequest *r); /* called once, when it ends */
  char message[256];           /* why it failed (no URL in it) */
};

/* The options of a request. Strings are borrowed for the length of
** tide_http_request_init (curl copies them). */
typedef struct tide_HttpOptions {
  const char *method;          /* "GET" when NULL */
  const char *url;
  const char *const *headers;  /* "Name: value" lines, NULL-terminated */
  const char *body;            /* sent when not NULL (body_len bytes) */
  size_t body_len;
  double timeout;              /* seconds for the whole transfer, 0: none */
  double connect_timeout;      /* seconds to connect, 0: curl's (300) */
  size_t max_size;             /* cap on the response body, 0: none */
  int follow;                  /* follow up to 10 redirects */
} tide_HttpOptions;

/* 0 when libcurl is loaded, or loads now (curl_api.h); else TIDE_EIO
** and *message says what is missing. */
int tide_http_ready(const char **message);

/* A client on loop. Returns 0, TIDE_ENOMEM, or TIDE_EIO when curl cannot
** be loaded or initialised (tide_http_ready says why). */
int tide_http_new(tide_Http **out, uv_loop_t *loop, tide_Alloc alloc,
                  void *ud);
/* Cancels the transfers left (their done callbacks run), lets curl close
** its connections and closes the client's handles; the client's memory
** is freed by the last close callback. Accepts NULL. */
void tide_http_free(tide_Http *h);
/* Requests under way. */
size_t tide_http_running(const tide_Http *h);

/* Prepares r from o (r's memory is the caller's; the buffers take alloc).
** Returns 0, TIDE_ENOMEM, or TIDE_EINVAL with r->message set (a method
** or header curl refuses), or TIDE_EIO with it set (libcurl cannot be
** loaded); r must then still be closed. */
int tide_http_request_init(tide_HttpRequest *r, const tide_HttpOptions *o,
                           tide_Alloc alloc, void *ud);
/* Starts r on h: r->done runs when it ends. 0 or TIDE_ENOMEM. */
int tide_http_start(tide_Http *h, tide_HttpRequest *r);
/* Stops r if it is under way (its done callback runs, kind CANCELLED). */
void tide_http_cancel(tide_HttpRequest *r);
/* Frees what r holds (not r). r must not be under way. Accepts a request
** that failed to initialise. */
void tide_http_request_close(tide_HttpRequest *r);

/* The URL without what may be a secret (user and password, the query,
** the fragment): scheme://host[:port]/path, written to out (truncated to
** size). For messages. */
void tide_http_url_for_message(const char *url, char *out, size_t size);

#endif
