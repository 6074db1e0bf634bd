-- `cargo xtask bench` runs wrk with this script: one authenticated 2026-07-28 request,
-- repeated; every answer checked; one JSON summary line at the end. MCP_BENCH_OP and
-- MCP_BENCH_TOKEN come from the environment, so the token never shows in a process list.
local op = os.getenv("MCP_BENCH_OP")
local meta = '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
  .. '"io.modelcontextprotocol/clientCapabilities":{},'
  .. '"io.modelcontextprotocol/clientInfo":{"name":"mcp-bench","version":"0.1.0"}}'
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("MCP_BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = op
local expect
if op == "tools/call" then
  wrk.headers["Mcp-Name"] = "get_user_profile"
  wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_user_profile","arguments":{},' .. meta .. '}}'
  expect = '"login'
else
  wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{' .. meta .. '}}'
  expect = '"get_user_profile"'
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  sample = ""
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"result"', 1, true)
      or not string.find(body, expect, 1, true)
      or string.find(body, '"isError":true', 1, true) then
    bad = bad + 1
    if sample == "" then
      sample = tostring(status) .. " " .. string.sub(body, 1, 160)
    end
  end
end

function done(summary, latency, requests)
  local bad_total, sample_any = 0, ""
  for _, thread in ipairs(threads) do
    bad_total = bad_total + thread:get("bad")
    local s = thread:get("sample")
    if sample_any == "" and s ~= nil then sample_any = s end
  end
  local e = summary.errors
  io.write(string.format(
    'MCP-BENCH {"requests":%d,"duration_us":%d,"bad":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"mean_us":%d,"sample":"%s"}\n',
    summary.requests, summary.duration, bad_total, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean,
    string.gsub(sample_any, '["\\%c]', "?")))
end
