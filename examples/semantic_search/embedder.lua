-- The embedder both main.lua and search.lua use (a query must be embedded
-- as the chunks were): an OpenAI-compatible server when TIDE_EMBED_URL
-- and TIDE_EMBED_MODEL are set (TIDE_EMBED_DIMS its vectors' size,
-- default 768; TIDE_EMBED_KEY_ENV the variable holding its API key, if
-- any), else tide's hashed embedder, which needs no model and no network.
local ai = require "tide.ai"

local url, model = os.getenv("TIDE_EMBED_URL"), os.getenv("TIDE_EMBED_MODEL")
if url and url ~= "" and model and model ~= "" then
  local dims = math.tointeger(tonumber(os.getenv("TIDE_EMBED_DIMS") or "768"))
  return ai.embedder { url = url, model = model, dims = dims, batch = 64,
                       concurrency = 4,
                       api_key_env = os.getenv("TIDE_EMBED_KEY_ENV") }, dims
end
return ai.hash_embedder { dims = 256 }, 256
