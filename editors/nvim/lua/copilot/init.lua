-- Self-hosted copilot for Neovim: starts copilot-lsp, shows inline completions (built in on
-- Neovim >= 0.12, own extmark ghost text on 0.10/0.11), :CopilotExplain, :CopilotStatus, :CopilotToggle.
local config = require("copilot.config")

local M = {}

M.name = "copilot"

local function has_builtin_inline()
  if config.options.ghost_text == "extmarks" then
    return false
  end
  return vim.lsp.inline_completion ~= nil and vim.fn.has("nvim-0.12") == 1
end
M.has_builtin_inline = has_builtin_inline

--- The running copilot client (of the current buffer first), or nil.
function M.client(bufnr)
  local clients = vim.lsp.get_clients({ name = M.name, bufnr = bufnr })
  if #clients == 0 then
    clients = vim.lsp.get_clients({ name = M.name })
  end
  return clients[1]
end

local function lsp_config(cmd)
  local o = config.options
  return {
    name = M.name,
    cmd = cmd,
    filetypes = o.filetypes,
    -- One server per project root; files outside any project share the cwd's server. Buffers that are no
    -- file (the empty buffer at startup, help, terminals) start none: a server is a model in memory.
    root_dir = function(bufnr, on_dir)
      if vim.bo[bufnr].buftype ~= "" or vim.api.nvim_buf_get_name(bufnr) == "" then
        return
      end
      on_dir(vim.fs.root(bufnr, o.root_markers) or vim.fn.getcwd())
    end,
    init_options = config.server_settings(o),
    settings = { copilot = config.server_settings(o) },
    on_attach = function(client, bufnr)
      require("copilot.inline").attach(client, bufnr)
    end,
  }
end

function M.setup(opts)
  local o = config.set(opts)
  local cmd = config.server_cmd(o)
  if not cmd then
    vim.notify("copilot: copilot-lsp not found (<cwd>/.venv/bin or PATH); set cmd in setup()", vim.log.levels.ERROR)
    return
  end
  if vim.lsp.config and vim.lsp.enable then -- Neovim 0.11+
    vim.lsp.config(M.name, lsp_config(cmd))
    vim.lsp.enable(M.name)
  else -- Neovim 0.10
    local group = vim.api.nvim_create_augroup("copilot.start", { clear = true })
    vim.api.nvim_create_autocmd("FileType", {
      group = group,
      callback = function(ev)
        if vim.bo[ev.buf].buftype ~= "" then
          return
        end
        if o.filetypes and not vim.tbl_contains(o.filetypes, vim.bo[ev.buf].filetype) then
          return
        end
        local c = lsp_config(cmd)
        c.root_dir = vim.fs.root(ev.buf, o.root_markers) or vim.fn.getcwd() -- 0.10 wants a string
        vim.lsp.start(c, { bufnr = ev.buf })
      end,
    })
  end
  require("copilot.inline").setup()
end

--- Push the current options to the running server.
function M.push_settings()
  local client = M.client()
  if client then
    client:notify("workspace/didChangeConfiguration", { settings = config.server_settings() })
  end
end

function M.toggle(on)
  if on == nil then
    on = not config.options.enable
  end
  config.options.enable = on
  M.push_settings()
  require("copilot.inline").set_enabled(on)
  vim.notify("copilot: completions " .. (on and "on" or "off"))
  return on
end

return M
