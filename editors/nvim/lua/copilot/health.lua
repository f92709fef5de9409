-- :checkhealth copilot
local M = {}

function M.check()
  local config = require("copilot.config")
  local copilot = require("copilot")
  vim.health.start("copilot: Neovim")
  if vim.fn.has("nvim-0.12") == 1 and vim.lsp.inline_completion then
    vim.health.ok("Neovim " .. tostring(vim.version()) .. ": built-in vim.lsp.inline_completion")
  elseif vim.fn.has("nvim-0.10") == 1 then
    vim.health.ok("Neovim " .. tostring(vim.version()) .. ": ghost text drawn by the plugin")
  else
    vim.health.error("Neovim 0.10 or newer is required")
  end
  vim.health.start("copilot: server")
  local cmd = config.server_cmd()
  if not cmd then
    vim.health.error("copilot-lsp not found", { "Install the project (scripts/install.sh) or pass cmd = {...} to setup()" })
  elseif vim.fn.executable(cmd[1]) == 1 then
    vim.health.ok("server command: " .. table.concat(cmd, " "))
  else
    vim.health.error("not executable: " .. cmd[1])
  end
  local client = copilot.client()
  if not client then
    vim.health.warn("no copilot client running (open a file after require('copilot').setup())")
    return
  end
  vim.health.ok(("client %d running, attached to %d buffer(s)"):format(client.id, vim.tbl_count(client.attached_buffers)))
  local st, err
  require("copilot.status").fetch(function(s, e)
    st, err = s, e
  end)
  vim.wait(3000, function()
    return st ~= nil or err ~= nil
  end, 20)
  if err then
    vim.health.error("copilot.status failed: " .. err)
  elseif not st then
    vim.health.warn("copilot.status did not answer in 3 s")
  elseif st.state == "ready" then
    vim.health.ok(require("copilot.status").format(st))
  elseif st.state == "failed" then
    vim.health.error("model failed to load: " .. tostring(st.error))
  else
    vim.health.warn("model state: " .. tostring(st.state))
  end
  vim.health.info("completions " .. (config.options.enable and "enabled" or "disabled"))
end

return M
