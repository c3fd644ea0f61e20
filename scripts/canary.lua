-- Opt-in canary: testers reach the new release with a cookie or a header, everyone else stays on
-- the route's upstream. The upstream learns which way the request went from X-Canary-Routed.
--   curl -H 'X-Canary: 1' ...        or a browser with the cookie   canary=always
local CANARY = "canary"   -- the upstream name in the config

local function has_cookie(cookies, name, value)
  for pair in string.gmatch(cookies, "[^;]+") do
    local k, v = string.match(pair, "^%s*([^=]-)%s*=%s*(.-)%s*$")
    if k == name and v == value then return true end
  end
  return false
end

function on_request(req)
  local wanted = req.headers["x-canary"] == "1" or has_cookie(req.headers["cookie"] or "", "canary", "always")
  if wanted then req.upstream = CANARY end
  req.headers["x-canary-routed"] = wanted and "1" or "0"
end
