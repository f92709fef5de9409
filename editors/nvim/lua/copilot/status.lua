-- :CopilotStatus: model, adapter@version, device, last latency, enabled.
-- :CopilotStats: shown vs accepted suggestions per adapter version (the server's copilot.stats).
local config = require("copilot.config")
local util = require("copilot.util")

local M = {}

local function val(v)
  if v == vim.NIL then
    return nil
  end
  return v
end

function M.format(st)
  st = vim.tbl_map(val, st)
  local adapter = st.adapter and (st.adapter .. (st.adapter_version and ("@" .. st.adapter_version) or "")) or "base"
  local lat = type(st.last_latency_ms) == "number" and ("%d ms"):format(math.floor(st.last_latency_ms + 0.5)) or "-"
  local line = ("copilot: %s [%s%s] adapter %s, last latency %s, completions %s"):format(
    tostring(st.model), tostring(st.state), st.device and (" on " .. st.device) or "", adapter, lat,
    config.options.enable and "on" or "off")
  if st.error then
    line = line .. " — error: " .. st.error
  end
  local svc = st.service
  if type(svc) == "table" and type(svc.problem) == "string" then
    line = line .. " — team service: " .. svc.problem
  end
  return line
end

--- Run one of the server's commands; `cb(result|nil, err|nil)`.
local function execute(command, cb)
  local client = require("copilot").client(0)
  if not client then
    cb(nil, "the copilot server is not running")
    return
  end
  util.request(client, "workspace/executeCommand", { command = command, arguments = {} }, function(err, result)
    cb(result, err and (err.message or tostring(err)) or nil)
  end)
end

--- Fetch a command's result and show it with `render(result) -> string`, or the error as a warning.
local function notify(fetch, render)
  fetch(function(res, err)
    if err then
      vim.notify("copilot: " .. err, vim.log.levels.WARN)
    else
      vim.notify(render(res))
    end
  end)
end

--- Fetch the server's status; `cb(status|nil, err|nil)`.
function M.fetch(cb)
  execute("copilot.status", cb)
end

function M.show()
  notify(M.fetch, M.format)
end

--- Lines for :CopilotStats from a copilot.stats result.
function M.format_stats(res)
  local lines = { "copilot: acceptance by adapter version" }
  for _, r in ipairs(res.by_version or {}) do
    local rate = type(r.rate) == "number" and ("%.1f%%"):format(100 * r.rate) or "-"
    local p50 = type(r.latency_p50_ms) == "number" and ("%d ms"):format(math.floor(r.latency_p50_ms + 0.5)) or "-"
    table.insert(lines, ("  %-22s shown %d, accepted %d (%s), %d chars accepted, latency p50 %s"):format(
      tostring(r.version), r.shown, r.accepted, rate, r.accepted_chars, p50))
  end
  if #lines == 1 then
    table.insert(lines, "  no suggestions shown yet")
  end
  return lines
end

--- Fetch the acceptance figures; `cb(result|nil, err|nil)`.
function M.fetch_stats(cb)
  execute("copilot.stats", cb)
end

function M.show_stats()
  notify(M.fetch_stats, function(res) return table.concat(M.format_stats(res), "\n") end)
end

return M
