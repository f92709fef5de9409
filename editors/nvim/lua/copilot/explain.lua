-- :CopilotExplain: the file (or the given lines) explained by the server, streamed into a
-- floating window (or a split) as markdown.
local config = require("copilot.config")
local util = require("copilot.util")

local M = {}

M.win, M.buf = nil, nil
M.current = nil -- token of the newest explanation; M.busy while it runs
local seq = 0

local function open_window(lines)
  if not (M.buf and vim.api.nvim_buf_is_valid(M.buf)) then
    M.buf = vim.api.nvim_create_buf(false, true)
    vim.bo[M.buf].filetype = "markdown"
    vim.bo[M.buf].bufhidden = "hide"
    vim.keymap.set("n", "q", function()
      pcall(vim.api.nvim_win_close, M.win, true)
    end, { buffer = M.buf, desc = "close the explanation" })
  end
  if not (M.win and vim.api.nvim_win_is_valid(M.win)) then
    if config.options.explain.layout == "split" then
      vim.cmd("botright vsplit")
      M.win = vim.api.nvim_get_current_win()
      vim.api.nvim_win_set_buf(M.win, M.buf)
      vim.cmd("wincmd p")
    else
      local width = math.max(40, math.floor(vim.o.columns * 0.6))
      local height = math.max(5, math.floor(vim.o.lines * 0.6))
      M.win = vim.api.nvim_open_win(M.buf, false, {
        relative = "editor",
        width = width,
        height = height,
        row = math.floor((vim.o.lines - height) / 2),
        col = math.floor((vim.o.columns - width) / 2),
        style = "minimal",
        border = "rounded",
        title = " Copilot: Explain ",
      })
    end
    vim.wo[M.win].wrap = true
    vim.wo[M.win].conceallevel = 2
  end
  M.set(lines)
end

function M.set(lines)
  if type(lines) == "string" then
    lines = vim.split(lines, "\n", { plain = true })
  end
  vim.bo[M.buf].modifiable = true
  vim.api.nvim_buf_set_lines(M.buf, 0, -1, false, lines)
  vim.bo[M.buf].modifiable = false
end

--- Explain the current buffer; `range` = {line1, line2} (1-based, inclusive) or nil for the file.
--- `on_done(markdown|nil, err|nil)` is called at the end (tests use it).
function M.explain(range, on_done)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = require("copilot").client(bufnr)
  if not client then
    vim.notify("copilot: the server is not attached to this buffer (require('copilot').setup()?)", vim.log.levels.ERROR)
    return
  end
  local arg = { uri = vim.uri_from_bufnr(bufnr) }
  if range then
    local last = vim.api.nvim_buf_get_lines(bufnr, range[2] - 1, range[2], false)[1] or ""
    arg.range = {
      start = { line = range[1] - 1, character = 0 },
      ["end"] = { line = range[2] - 1, character = util.utfindex(last, client.offset_encoding) },
    }
  end
  seq = seq + 1
  local token = ("copilot-nvim-explain-%d-%d"):format(vim.fn.getpid(), seq)
  arg.token = token
  M.current, M.busy = token, true
  open_window({ "_Explaining…_" })
  -- Streamed text arrives as $/progress reports on our token (the LspProgress event).
  local group = vim.api.nvim_create_augroup("copilot.explain.progress", { clear = true })
  vim.api.nvim_create_autocmd("LspProgress", {
    group = group,
    pattern = "report",
    callback = function(ev)
      local p = ev.data and ev.data.params
      if p and p.token == token and M.current == token and p.value and type(p.value.message) == "string" and M.buf then
        M.set(p.value.message)
      end
    end,
  })
  util.request(client, "workspace/executeCommand", { command = "copilot.explainStream", arguments = { arg } }, function(err, result)
    if M.current ~= token then
      return -- a newer :CopilotExplain owns the window
    end
    pcall(vim.api.nvim_del_augroup_by_id, group)
    M.busy = false
    if err then
      M.set({ "**Error:** " .. (err.message or tostring(err)) })
      if on_done then on_done(nil, err) end
      return
    end
    local md = (result and result.markdown) or "_(no explanation)_"

    M.set(md)
    if on_done then on_done(md, nil) end
  end, bufnr)
end

return M
