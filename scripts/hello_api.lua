-- A small JSON API answered by Keystone itself, no upstream involved.
-- handle(req) serves the routes whose config says `handler: hello_api`; the `routes` table below
-- declares a route of its own, which every config using this scripts folder then serves.
local respond = require("respond")

function handle(req)
  return respond.json(200, {
    message = "hello",
    path = req.path,
    time = os.date("!%Y-%m-%dT%H:%M:%SZ"),   -- UTC, ISO 8601
  })
end

routes = {
  -- GET /lua/hello/ada -> {"message":"hello, ada","name":"ada"}
  ["GET /lua/hello/{name}"] = function(req)
    local name = req.params.name
    return respond.json(200, { message = "hello, " .. name, name = name })
  end,
}
