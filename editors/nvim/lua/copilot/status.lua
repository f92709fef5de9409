-- :CopilotStatus: model, adapter@version, device, last latency, enabled.
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
  return line
end

--- Fetch the server's status; `cb(status|nil, err|nil)`.
function M.fetch(cb)
  local client = require("copilot").client(0)
  if not client then
    cb(nil, "the copilot server is not running")
    return
  end
  util.request(client, "workspace/executeCommand", { command = "copilot.status", arguments = {} }, function(err, result)
    cb(result, err and (err.message or tostring(err)) or nil)
  end)
end

function M.show()
  M.fetch(function(st, err)
    if err then
      vim.notify("copilot: " .. err, vim.log.levels.WARN)
    else
      vim.notify(M.format(st))
    end
  end)
end

return M
