-- Counts requests per client IP and minute in keystone.shared (one count across all Lua states), tells
-- the client its count in X-Request-Count, and answers 429 past LIMIT until the minute is over.
-- Behind a load balancer, req.client_ip is the balancer's address: count a header such as
-- X-Forwarded-For only if the balancer sets it and clients cannot.
local respond = require("respond")

local LIMIT = 100    -- requests per client per minute
local WINDOW = 60    -- seconds

function on_request(req)
  local now = keystone.now()
  local key = "count:" .. req.client_ip .. ":" .. math.floor(now / WINDOW)
  local count = keystone.shared.incr(key, 1, WINDOW)
  if count == nil then return end   -- the dictionary refused (full): let the request through
  if count > LIMIT then
    local retry_after = WINDOW - math.floor(now) % WINDOW
    return respond.json(429, { error = "too many requests", limit = LIMIT, retry_after = retry_after },
      { ["retry-after"] = retry_after, ["x-request-count"] = count })
  end
  req.ctx.request_count = count
end

function on_response(req, res)
  local count = req.ctx.request_count
  if count ~= nil then res.headers["x-request-count"] = count end
end
