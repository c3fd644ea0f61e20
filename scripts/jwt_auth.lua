-- Bearer tokens (JWT, HS256) checked at the edge, so the upstream only sees verified callers.
-- The shared secret comes from KEYSTONE_JWT_SECRET, which the config lists under lua.env.
-- On success the upstream gets X-User = the token's "sub" claim; a client's own X-User is replaced.
local respond = require("respond")

local SECRET = keystone.env("KEYSTONE_JWT_SECRET")
local LEEWAY = 30   -- seconds of clock skew tolerated on exp/nbf

-- RFC 6750: a request without credentials gets a bare challenge, a bad token error="invalid_token".
local function refuse(challenge, message)
  return respond.json(401, { error = message }, { ["www-authenticate"] = challenge })
end

function on_request(req)
  if SECRET == nil or SECRET == "" then
    keystone.log("error", "KEYSTONE_JWT_SECRET is not set or not listed under lua.env")
    return respond.json(500, { error = "authentication is not configured" })
  end
  local header = req.headers["authorization"]
  if header == nil then return refuse("Bearer", "missing bearer token") end
  local token = string.match(header, "^[Bb]earer%s+(%S+)%s*$")
  local claims, err = keystone.jwt.verify(token, { alg = "HS256", secret = SECRET, leeway = LEEWAY })
  if claims == nil then
    keystone.log("debug", "rejected token:", err)
    return refuse('Bearer error="invalid_token"', "invalid token")
  end
  if type(claims.sub) ~= "string" or claims.sub == "" then
    return refuse('Bearer error="invalid_token"', "token has no subject")
  end
  req.headers["x-user"] = claims.sub
end
