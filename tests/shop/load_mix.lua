-- wrk script: the seed flows' mix, one simulated customer per connection (run wrk with as many
-- threads as connections: a thread's Lua state then serves exactly one connection, so the state
-- below is per customer). Each customer registers, signs in, and then makes ops_per_user requests:
-- product list and product reads, cart adds, a checkout every 10th request, and an admin read of
-- the event log. Every acknowledged registration and order id is written to
-- $HERALD_LOAD_OUT/acks-<thread>.txt ("U <user id>" / "O <order id>") for the checker.
-- Environment: HERALD_LOAD_PRODUCTS (comma-separated product ids), HERALD_LOAD_OUT (a directory),
-- HERALD_LOAD_RATE (requests/s for this thread; 0 or unset: as fast as it answers).
-- Sign-in is one step of the flow (sign_in below); the bearer token goes on every cart and order
-- request (auth_headers).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } herald_timespec;
int clock_gettime(int clk_id, herald_timespec *tp);
]]
local function now_ms()
  local ts = ffi.new("herald_timespec")
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

-- Globals, not locals: thread:set and thread:get reach only a thread's globals.
counts = {ok = 0, client_error = 0, server_error = 0, registered = 0, ordered = 0}
local threads = {}
local next_tid = 0
function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  table.insert(threads, thread)
end

local ops_per_user = 200
local products = {}
local acks
local interval_ms = 0
local next_send = nil
local state = "register"   -- register -> sign_in -> shop
local user_n, op, user_id, token, email, pending = 0, 0, nil, nil, nil, nil

function init(args)
  for id in string.gmatch(os.getenv("HERALD_LOAD_PRODUCTS") or "", "[^,]+") do table.insert(products, id) end
  acks = io.open((os.getenv("HERALD_LOAD_OUT") or ".") .. "/acks-" .. tid .. ".txt", "w")
  local rate = tonumber(os.getenv("HERALD_LOAD_RATE") or "0")
  if rate > 0 then interval_ms = 1000 / rate end
end

-- Fixed rate: each request is due interval_ms after the previous one was due (not after it was
-- answered), so a slow answer does not lower the offered rate; late ones go at once.
function delay()
  if interval_ms == 0 then return 0 end
  local t = now_ms()
  if next_send == nil then next_send = t end
  next_send = next_send + interval_ms
  local d = next_send - t
  if d < 0 then return 0 end
  return math.floor(d)
end

local json_headers = {["Content-Type"] = "application/json"}
local function auth_headers()
  return {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
end
local function product()
  return products[math.random(#products)]
end

request = function()
  if state == "register" then
    user_n = user_n + 1
    email = string.format("mix-%d-%d-%d@example.com", tid, user_n, math.random(1e9))
    pending = "register"
    return wrk.format("POST", "/api/users", json_headers,
      string.format('{"email":"%s","name":"Mix %d","password":"correct horse battery staple"}', email, user_n))
  elseif state == "sign_in" then
    pending = "sign_in"
    return wrk.format("POST", "/api/sessions", json_headers,
      string.format('{"email":"%s","password":"correct horse battery staple"}', email))
  end
  op = op + 1
  local k = op % 10
  if k == 0 then
    pending = "checkout"
    return wrk.format("POST", "/api/orders", auth_headers(), '{"payment_token":"tok_visa"}')
  elseif k == 1 or k == 5 then
    pending = "cart"
    return wrk.format("POST", "/api/carts/" .. user_id .. "/items", auth_headers(),
      string.format('{"product_id":"%s","quantity":1}', product()))
  elseif k == 9 then
    pending = "admin"
    return wrk.format("GET", "/admin/events?limit=20&category=order")
  elseif k % 2 == 0 then
    pending = "read"
    return wrk.format("GET", "/api/products/" .. product())
  end
  pending = "read"
  return wrk.format("GET", "/api/products?limit=10")
end

response = function(status, headers, body)
  if status >= 500 then
    counts.server_error = counts.server_error + 1
    io.stderr:write(string.format("5xx %d for %s: %s\n", status, pending, body))
  elseif status >= 400 then
    counts.client_error = counts.client_error + 1
    io.stderr:write(string.format("%d for %s: %s\n", status, pending, body))
  else
    counts.ok = counts.ok + 1
  end
  if pending == "register" then
    if status == 201 then
      local id = string.match(body, '"id":"([^"]+)"')
      acks:write("U " .. id .. "\n")
      acks:flush()
      counts.registered = counts.registered + 1
      state = "sign_in"
    end
  elseif pending == "sign_in" then
    if status == 201 then
      user_id = string.match(body, '"user_id":"([^"]+)"')
      token = string.match(body, '"token":"([^"]+)"')
      state = "shop"
      op = 0
    end
  elseif pending == "checkout" and status == 202 then
    acks:write("O " .. string.match(body, '"id":"([^"]+)"') .. "\n")
    acks:flush()
    counts.ordered = counts.ordered + 1
  end
  if state == "shop" and op >= ops_per_user then state = "register" end
end

done = function(summary, latency, requests)
  local t = {ok = 0, client_error = 0, server_error = 0, registered = 0, ordered = 0}
  for _, th in ipairs(threads) do
    local c = th:get("counts")
    for k, v in pairs(c) do t[k] = t[k] + v end
  end
  local e = summary.errors
  io.write(string.format("MIX requests %d ok %d client_error %d server_error %d registered %d ordered %d " ..
    "connect %d read %d write %d timeout %d p50_ms %.2f p99_ms %.2f seconds %.1f\n",
    summary.requests, t.ok, t.client_error, t.server_error, t.registered, t.ordered,
    e.connect, e.read, e.write, e.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.duration / 1e6))
end
