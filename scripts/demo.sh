#!/bin/sh
# `make demo`: indexes examples/docs_search/docs into SQLite with FTS5,
# runs it again to show that nothing is redone, and searches the result;
# then indexes this machine's Debian changelogs (examples/changelogs),
# with gzip run through tide.exec and words counted on worker threads;
# then embeds this repository's documents and runs a hybrid search
# (examples/semantic_search).
set -e
BUILD=${BUILD:-build}
tide="$(pwd)/$BUILD/tide"
cd examples/docs_search
rm -rf .tide out
echo "== first run: every document is processed"
"$tide" update main.lua --json
echo
echo "== second run: nothing changed, nothing is redone"
"$tide" update main.lua --json
echo
echo "== full-text search for 'fingerprint'"
sqlite3 -header -column out/docs.db \
  "SELECT chunks.file, chunks.heading, chunks.line_start AS from_line,
          chunks.line_end AS to_line
   FROM chunks_fts JOIN chunks ON chunks.rowid = chunks_fts.rowid
   WHERE chunks_fts MATCH 'fingerprint' ORDER BY chunks.file, from_line"
echo
echo "== where did one row come from?"
"$tide" why main.lua chunks "guide/memoization.md#3"
echo
echo "== concurrency: every Debian changelog on this machine (examples/changelogs)"
cd ../changelogs
rm -rf .tide out
"$tide" update main.lua
"$tide" update main.lua
sqlite3 -header -column out/changelogs.db \
  "SELECT binary, count(*) AS entries, sum(words) AS words FROM entries
   GROUP BY binary ORDER BY words DESC LIMIT 5"
echo
echo "== semantic search: this repository's documents, embedded with no model"
echo "   (examples/semantic_search; TIDE_EMBED_URL and TIDE_EMBED_MODEL name a server)"
cd ../semantic_search
rm -rf .tide out
"$tide" update main.lua
"$tide" update main.lua
"$tide" run search.lua "crash safety after kill -9" 3
