-- Benchmark item 5 with wrk: password logins, each a GET of the login form and its POST.
--
-- Run with as many wrk threads as connections (-tN -cN): a thread's requests are then strictly
-- GET, POST, GET, POST... on its one connection. The GET comes without cookies (a fresh visitor); its
-- session cookie and CSRF token go into the POST, whose 302 is a successful login. The user cycles over
-- BENCH_USERS (comma-separated, one password BENCH_PASSWORD for all), one start offset per thread.
-- Every request carries "Connection: close" (one TCP connection per request, as behind nginx; see
-- loadgen.py's docstring for why). done() prints "logins N failures M" for run.py to read.
-- The form's path and field names come from BENCH_LOGIN_PATH, BENCH_TOKEN_FIELD, BENCH_USER_FIELD and
-- BENCH_EXTRA_FIELDS (geologin's by default; the peer site's are /accounts/login/, csrfmiddlewaretoken, login).

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

local users = {}
local password = ""
local step = "get"
local cookie = nil
local token = nil
logins = 0
failures = 0
local turn = 0
local path = "/login"
local token_field = "csrf_token"
local user_field = "username"
local extra = "&next="

function init(args)
  for name in string.gmatch(os.getenv("BENCH_USERS") or "", "[^,]+") do
    table.insert(users, name)
  end
  password = os.getenv("BENCH_PASSWORD") or ""
  path = os.getenv("BENCH_LOGIN_PATH") or path
  token_field = os.getenv("BENCH_TOKEN_FIELD") or token_field
  user_field = os.getenv("BENCH_USER_FIELD") or user_field
  extra = os.getenv("BENCH_EXTRA_FIELDS") or extra
  turn = id or 0
end

local function urlencode(text)
  return (string.gsub(text, "[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function request()
  if step == "post" and cookie and token then
    turn = turn + 1
    local user = users[(turn % #users) + 1]
    local body = token_field .. "=" .. urlencode(token) .. "&" .. user_field .. "=" .. urlencode(user) ..
                 "&password=" .. urlencode(password) .. extra
    return wrk.format("POST", path, {["Cookie"] = cookie, ["Connection"] = "close",
                      ["Content-Type"] = "application/x-www-form-urlencoded"}, body)
  end
  step = "get"
  return wrk.format("GET", path, {["Connection"] = "close"})
end

function response(status, headers, body)
  if step == "get" then
    local set_cookie = headers["Set-Cookie"] or headers["set-cookie"]
    cookie = set_cookie and string.match(set_cookie, "^([^;]+)") or nil
    token = string.match(body, 'name="' .. token_field .. '"[^>]-value="([^"]+)"')
    if status == 200 and cookie and token then
      step = "post"
    else
      failures = failures + 1
    end
  else
    if status == 302 then
      logins = logins + 1
    else
      failures = failures + 1
    end
    step = "get"
    cookie = nil
    token = nil
  end
end

function done(summary, latency, requests)
  local total_logins, total_failures = 0, 0
  for _, thread in ipairs(threads) do
    total_logins = total_logins + (thread:get("logins") or 0)
    total_failures = total_failures + (thread:get("failures") or 0)
  end
  io.write(string.format("logins %d failures %d\n", total_logins, total_failures))
end
