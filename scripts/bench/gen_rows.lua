-- Makes the SQLite database of bench_sources.sh: a table items(id, title,
-- body, n) of N rows whose values are a function of the row number only,
-- the same as gen_jsonl.sh writes. Usage: tide run gen_rows.lua DB N
local sqlite = require "tide.sqlite"
local path, n = assert(arg[1], "usage: DB N"), assert(math.tointeger(arg[2]))
local db = assert(sqlite.open(path, "create"))
assert(db:exec(([[
CREATE TABLE items (id TEXT PRIMARY KEY, title TEXT NOT NULL,
                    body TEXT NOT NULL, n INTEGER NOT NULL);
BEGIN;
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < %d)
INSERT INTO items
  SELECT printf('r%%07d', i), 'Record ' || i,
         'This is record ' || i || ' of the benchmark source. It has a body '
           || 'of about a hundred bytes, ' || (i %% 97) || ' words long.', i
  FROM c;
COMMIT;
]]):format(n - 1)))
db:close()
