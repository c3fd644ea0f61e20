-- Kong's "AWS masking" use case: AWS identifiers in a JSON request body never reach the upstream
-- (an LLM API, a ticketing tool); it sees opaque tokens such as AWSMASK_1_3fa9c2d1, and the client
-- gets its own identifiers back in the response. The route needs buffer_response: true so that
-- on_response can rewrite res.body. The mapping lives in keystone.shared until the response.
-- Any 12-digit number counts as an account id: an order number of that length is masked too
-- (and restored), which is the safe side to err on.
local respond = require("respond")

local TTL = 60   -- seconds a mapping may outlive a request that never got a response
-- Most specific first: an ARN contains an account id and sometimes an instance id.
local KINDS = {
  { pattern = "arn:aws[%w%-]*:[%w%-]+:[%w%-]*:[%w%-]*:[%w%-_/:.+=@*]+" },
  { pattern = "%f[%w]i%-%x+%f[^%w]", fits = function(id) return #id == 10 or #id == 19 end },
  { pattern = "%f[%d]%d%d%d%d%d%d%d%d%d%d%d%d%f[%D]" },
}

local function key(req, token) return "awsmask:" .. req.id .. ":" .. token end

function on_request(req)
  local content_type = string.lower(req.headers["content-type"] or "")
  if not string.find(content_type, "json", 1, true) then return end
  local ok, body = pcall(function() return req.body end)
  if not ok then return respond.json(413, { error = "request body too large to mask" }) end
  if body == "" then return end

  -- Per request and unguessable, so a token from one request never restores in another.
  local tag = string.sub(keystone.sha256(req.id .. ":" .. math.random(0, 1 << 40)), 1, 8)
  local tokens, count = {}, 0
  local function mask(value, fits)
    if fits and not fits(value) then return nil end   -- nil keeps the text as it was
    local token = tokens[value]
    if token == nil then
      count = count + 1
      token = "AWSMASK_" .. count .. "_" .. tag
      tokens[value] = token
      -- Fail closed: an identifier that could not be remembered must not be sent masked (nor in clear).
      assert(keystone.shared.set(key(req, token), value, TTL), "keystone.shared refused the mapping")
    end
    return token
  end
  for _, kind in ipairs(KINDS) do
    body = string.gsub(body, kind.pattern, function(value) return mask(value, kind.fits) end)
  end
  if count == 0 then return end
  req.body = body
  req.ctx.aws_mask = { tag = tag, count = count }
end

function on_response(req, res)
  local mask = req.ctx.aws_mask
  if mask == nil then return end
  local body = res.body
  if body ~= nil and body ~= "" then
    res.body = string.gsub(body, "AWSMASK_%d+_" .. mask.tag, function(token)
      return keystone.shared.get(key(req, token))
    end)
  end
  for i = 1, mask.count do keystone.shared.delete(key(req, "AWSMASK_" .. i .. "_" .. mask.tag)) end
end
