-- The hook of the load benchmarks (lua-overhead.sh, bench-load.sh): check an API key header, set a header for
-- the upstream, add a response header. bench-load.sh gives nginx's access_by_lua the same work; keep them alike.
function on_request(req)
  if req.headers["x-api-key"] ~= "bench-key" then
    return { status = 401, body = "invalid api key" }
  end
  req.headers["x-consumer"] = "bench"
end

function on_response(req, res)
  res.headers["x-gateway"] = "keystone"
end
