/*
** libpq, loaded when first needed (dynlib.h): the PostgreSQL sources
** include this instead of <libpq-fe.h>, and their calls go through a
** table that tide_pq_need fills once. Only the names listed here may be
** called; a new one goes in TIDE_PQ_FUNCS.
*/
#ifndef TIDE_PQ_API_H
#define TIDE_PQ_API_H

#include <libpq-fe.h>

/* The functions tide calls, each as libpq's header declares it. */
#define TIDE_PQ_FUNCS(X) X(PQclear) X(PQcmdStatus) X(PQcmdTuples) \
  X(PQconndefaults) X(PQconnectPoll) X(PQconnectStart) X(PQconnectdb) \
  X(PQconnectdbParams) X(PQconninfoFree) X(PQconninfoParse) \
  X(PQconsumeInput) X(PQenterPipelineMode) X(PQerrorMessage) X(PQexec) \
  X(PQexecParams) X(PQfinish) X(PQflush) X(PQfname) X(PQfreemem) X(PQftype) \
  X(PQgetResult) X(PQgetisnull) X(PQgetlength) X(PQgetvalue) X(PQisBusy) \
  X(PQnfields) X(PQnotifies) X(PQntuples) X(PQpipelineStatus) \
  X(PQpipelineSync) X(PQputCopyData) X(PQputCopyEnd) X(PQresultErrorField) \
  X(PQresultErrorMessage) X(PQresultStatus) X(PQsendPrepare) X(PQsendQuery) \
  X(PQsendQueryParams) X(PQsendQueryPrepared) X(PQsetNoticeProcessor) \
  X(PQsetnonblocking) X(PQsocket) X(PQstatus) X(PQtransactionStatus)

typedef struct {
#define TIDE_API_FIELD(f) __typeof__(f) *f;
  TIDE_PQ_FUNCS(TIDE_API_FIELD)
#undef TIDE_API_FIELD
} tide_PqApi;

extern tide_PqApi tide_pq;

/* Loads libpq unless it is loaded: 0, or -1 with *message (dynlib.h).
** Every path into libpq goes through this first (a connection or a
** request starts there), so the calls below find their functions. */
int tide_pq_need(const char **message);

/* The calls: through the table, under their own names. */
#ifndef TIDE_PQ_API_H_TABLE
#define PQclear tide_pq.PQclear
#define PQcmdStatus tide_pq.PQcmdStatus
#define PQcmdTuples tide_pq.PQcmdTuples
#define PQconndefaults tide_pq.PQconndefaults
#define PQconnectPoll tide_pq.PQconnectPoll
#define PQconnectStart tide_pq.PQconnectStart
#define PQconnectdb tide_pq.PQconnectdb
#define PQconnectdbParams tide_pq.PQconnectdbParams
#define PQconninfoFree tide_pq.PQconninfoFree
#define PQconninfoParse tide_pq.PQconninfoParse
#define PQconsumeInput tide_pq.PQconsumeInput
#define PQenterPipelineMode tide_pq.PQenterPipelineMode
#define PQerrorMessage tide_pq.PQerrorMessage
#define PQexec tide_pq.PQexec
#define PQexecParams tide_pq.PQexecParams
#define PQfinish tide_pq.PQfinish
#define PQflush tide_pq.PQflush
#define PQfname tide_pq.PQfname
#define PQfreemem tide_pq.PQfreemem
#define PQftype tide_pq.PQftype
#define PQgetResult tide_pq.PQgetResult
#define PQgetisnull tide_pq.PQgetisnull
#define PQgetlength tide_pq.PQgetlength
#define PQgetvalue tide_pq.PQgetvalue
#define PQisBusy tide_pq.PQisBusy
#define PQnfields tide_pq.PQnfields
#define PQnotifies tide_pq.PQnotifies
#define PQntuples tide_pq.PQntuples
#define PQpipelineStatus tide_pq.PQpipelineStatus
#define PQpipelineSync tide_pq.PQpipelineSync
#define PQputCopyData tide_pq.PQputCopyData
#define PQputCopyEnd tide_pq.PQputCopyEnd
#define PQresultErrorField tide_pq.PQresultErrorField
#define PQresultErrorMessage tide_pq.PQresultErrorMessage
#define PQresultStatus tide_pq.PQresultStatus
#define PQsendPrepare tide_pq.PQsendPrepare
#define PQsendQuery tide_pq.PQsendQuery
#define PQsendQueryParams tide_pq.PQsendQueryParams
#define PQsendQueryPrepared tide_pq.PQsendQueryPrepared
#define PQsetNoticeProcessor tide_pq.PQsetNoticeProcessor
#define PQsetnonblocking tide_pq.PQsetnonblocking
#define PQsocket tide_pq.PQsocket
#define PQstatus tide_pq.PQstatus
#define PQtransactionStatus tide_pq.PQtransactionStatus
#endif

#endif
