-- The options the searches share (sqlite.search and hybrid_search,
-- postgres.search and hybrid_search), checked with the same words. Each
-- check raises at the caller of the search function: level 3 (the check,
-- the search, its caller) unless given another, for a check called
-- through a helper; name is the search's, which messages start with.
local type, error, pairs, tostring = type, error, pairs, tostring
local fmt = string.format
local math_type = math.type

local M = {}

-- opts is a table with only the allowed keys.
function M.table(name, opts, allowed, level)
  level = level or 3
  if type(opts) ~= "table" then
    error(name .. ": expected a table of options", level)
  end
  for key in pairs(opts) do
    if not allowed[key] then
      error(fmt("%s: unknown option %s", name, tostring(key)), level)
    end
  end
end

-- Checks vector (nil allowed when optional), k, where and metric;
-- returns k and the metric, "cosine" or "l2".
function M.ranking(name, opts, optional_vector, level)
  level = level or 3
  local v = opts.vector
  if (v ~= nil or not optional_vector)
     and (type(v) ~= "table" or #v == 0) then
    error(name .. ": vector must be a non-empty list of numbers", level)
  end
  local k = opts.k or 10
  if math_type(k) ~= "integer" or k < 1 then
    error(name .. ": k must be a positive integer", level)
  end
  if opts.where ~= nil and type(opts.where) ~= "string" then
    error(name .. ": where must be an SQL condition (a string)", level)
  end
  local metric = opts.metric or "cosine"
  if metric ~= "cosine" and metric ~= "l2" then
    error(name .. ": metric must be \"cosine\" or \"l2\"", level)
  end
  return k, metric
end

-- A hybrid search ranks by a vector, a text or both.
function M.vector_or_text(name, opts, level)
  if opts.vector == nil and opts.text == nil then
    error(name .. ": give vector, text or both", level or 3)
  end
end

-- A hybrid search's own options: text, candidates (default max(4 * k,
-- 50)) and rrf_k (default 60); returns candidates and rrf_k.
function M.fusion(name, opts, k, level)
  level = level or 3
  if opts.text ~= nil and type(opts.text) ~= "string" then
    error(name .. ": text must be a string", level)
  end
  local n = opts.candidates or (4 * k > 50 and 4 * k or 50)
  if math_type(n) ~= "integer" or n < 1 then
    error(name .. ": candidates must be a positive integer", level)
  end
  local rrf_k = opts.rrf_k or 60
  if type(rrf_k) ~= "number" or not (rrf_k >= 0 and rrf_k < math.huge) then
    error(name .. ": rrf_k must be a number >= 0", level)
  end
  return n, rrf_k
end

return M
