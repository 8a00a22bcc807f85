-- tide: the user API, composed over the C core (tide.core).
local core = require "tide.core"
local record = require "tide.record"

local tide = {
  _VERSION = "tide " .. core.version,
  version = core.version,

  -- Canonical values (deterministic CBOR) and fingerprints.
  cbor = { encode = core.cbor_encode, decode = core.cbor_decode },
  fingerprint = core.fingerprint,
  fingerprint_file = core.fingerprint_file,
  logic_fingerprint = core.logic_fingerprint,

  -- Record types.
  record = record.record,
  list = record.list,
  vector = record.vector,
  optional = record.optional,
  check = record.check,
  type_of = record.type_of,
}

return tide
