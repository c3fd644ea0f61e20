-- API keys for machine clients (what Kong's key-auth plugin does).
-- A request passes when its X-API-Key is one of the comma-separated keys in KEYSTONE_API_KEYS;
-- anything else gets 401. The config must list KEYSTONE_API_KEYS under lua.env, or no key passes.
-- The key itself never reaches the upstream: it gets X-Consumer, a short hash of the key that
-- names the caller in its logs without revealing the secret.
local respond = require("respond")

-- Keys are kept as digests, read once per Lua state: a lookup by digest takes the same time
-- whichever character of a wrong key differs.
local KNOWN = {}
for key in string.gmatch(keystone.env("KEYSTONE_API_KEYS") or "", "[^,]+") do
  key = string.match(key, "^%s*(.-)%s*$")
  if key ~= "" then KNOWN[keystone.sha256(key)] = true end
end

function on_request(req)
  local key = req.headers["x-api-key"]
  local digest = key and keystone.sha256(key)
  if digest == nil or not KNOWN[digest] then
    return respond.json(401, { error = "invalid api key" })
  end
  req.headers["x-api-key"] = nil
  -- Set even when the client sent one: only Keystone may name the consumer.
  req.headers["x-consumer"] = string.sub(digest, 1, 12)
end
