-- Response tables shared by the example scripts: local respond = require("respond").
local respond = {}

-- A JSON answer: respond.json(401, { error = "invalid api key" }, { ["WWW-Authenticate"] = "Bearer" }).
-- Header names are lowercased so a caller's Content-Type replaces the default instead of doubling it.
function respond.json(status, body, headers)
  local all = { ["content-type"] = "application/json" }
  for name, value in pairs(headers or {}) do all[string.lower(name)] = value end
  return { status = status, headers = all, body = keystone.json.encode(body) }
end

return respond
