-- Browser security headers on every response, and no banner saying what runs behind Keystone.
-- A header the application already sent is kept: a page that must be framed by a partner site
-- can still send its own X-Frame-Options.
local HEADERS = {
  ["strict-transport-security"] = "max-age=31536000; includeSubDomains",   -- HTTPS only, for a year
  ["x-content-type-options"] = "nosniff",
  ["x-frame-options"] = "DENY",
  ["referrer-policy"] = "strict-origin-when-cross-origin",
}

function on_response(req, res)
  local headers = res.headers
  for name, value in pairs(HEADERS) do
    if headers[name] == nil then headers[name] = value end
  end
  headers["server"] = nil
  headers["x-powered-by"] = nil
end
