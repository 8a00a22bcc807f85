/*
** libcurl, loaded when first needed (dynlib.h): http.c includes this
** instead of <curl/curl.h>, and its calls go through a table that
** tide_curl_need fills once (curl_global_init then runs, once). Only
** the names listed here may be called; a new one goes in
** TIDE_CURL_FUNCS. curl's type-checking macros are off: they would hide
** the calls from the table (an option's value must be of its type, as
** curl's documentation gives it).
*/
#ifndef TIDE_CURL_API_H
#define TIDE_CURL_API_H

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

/* The functions tide calls, each as curl's header declares it. */
#define TIDE_CURL_FUNCS(X) X(curl_easy_cleanup) X(curl_easy_getinfo) \
  X(curl_easy_init) X(curl_easy_setopt) X(curl_easy_strerror) \
  X(curl_global_init) X(curl_multi_add_handle) X(curl_multi_assign) \
  X(curl_multi_cleanup) X(curl_multi_info_read) X(curl_multi_init) \
  X(curl_multi_remove_handle) X(curl_multi_setopt) \
  X(curl_multi_socket_action) X(curl_slist_append) X(curl_slist_free_all)

typedef struct {
#define TIDE_API_FIELD(f) __typeof__(f) *f;
  TIDE_CURL_FUNCS(TIDE_API_FIELD)
#undef TIDE_API_FIELD
} tide_CurlApi;

extern tide_CurlApi tide_curl;

/* Loads libcurl unless it is loaded: 0, or -1 with *message (dynlib.h).
** Every path into libcurl goes through this first (a connection or a
** request starts there), so the calls below find their functions. */
int tide_curl_need(const char **message);

/* The calls: through the table, under their own names (curl.h makes
** three of them macros that check their argument count). */
#ifndef TIDE_CURL_API_H_TABLE
#undef curl_easy_getinfo
#undef curl_easy_setopt
#undef curl_multi_setopt
#define curl_easy_cleanup tide_curl.curl_easy_cleanup
#define curl_easy_getinfo tide_curl.curl_easy_getinfo
#define curl_easy_init tide_curl.curl_easy_init
#define curl_easy_setopt tide_curl.curl_easy_setopt
#define curl_easy_strerror tide_curl.curl_easy_strerror
#define curl_global_init tide_curl.curl_global_init
#define curl_multi_add_handle tide_curl.curl_multi_add_handle
#define curl_multi_assign tide_curl.curl_multi_assign
#define curl_multi_cleanup tide_curl.curl_multi_cleanup
#define curl_multi_info_read tide_curl.curl_multi_info_read
#define curl_multi_init tide_curl.curl_multi_init
#define curl_multi_remove_handle tide_curl.curl_multi_remove_handle
#define curl_multi_setopt tide_curl.curl_multi_setopt
#define curl_multi_socket_action tide_curl.curl_multi_socket_action
#define curl_slist_append tide_curl.curl_slist_append
#define curl_slist_free_all tide_curl.curl_slist_free_all
#endif

#endif
