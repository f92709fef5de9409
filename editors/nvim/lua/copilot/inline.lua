-- Inline completions. Neovim >= 0.12: vim.lsp.inline_completion (built in). Older: ghost text drawn
-- here with extmarks from textDocument/inlineCompletion, accepted with the same key.
local config = require("copilot.config")
local util = require("copilot.util")

local M = {}

M.ns = vim.api.nvim_create_namespace("copilot.ghost")
local state = {} -- bufnr -> { item, row, col, request_id, timer }
local mapped = false

local function builtin()
  return require("copilot").has_builtin_inline()
end

function M.builtin_ns()
  return vim.api.nvim_get_namespaces()["nvim.lsp.inline_completion"]
end

--- The visible suggestion's text in `bufnr`, or nil (either implementation).
function M.visible_text(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local ns = builtin() and M.builtin_ns() or M.ns
  if not ns then
    return nil
  end
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })
  if #marks == 0 then
    return nil
  end
  local d = marks[1][4]
  local parts = {}
  for _, chunk in ipairs(d.virt_text or {}) do
    table.insert(parts, chunk[1])
  end
  local lines = { table.concat(parts) }
  for _, vl in ipairs(d.virt_lines or {}) do
    local l = {}
    for _, chunk in ipairs(vl) do
      table.insert(l, chunk[1])
    end
    table.insert(lines, table.concat(l))
  end
  return table.concat(lines, "\n")
end

-- ---------------------------------------------------------------- own ghost text (< 0.12)
local function clear(bufnr)
  local s = state[bufnr]
  if s and s.request_id and s.client then
    pcall(util.cancel, s.client, s.request_id)
  end
  if s and s.timer then
    s.timer:stop()
    s.timer:close()
  end
  state[bufnr] = nil
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
end

local function draw(bufnr, item, row, col)
  local text = type(item.insertText) == "string" and item.insertText or (item.insertText or {}).value or ""
  local lines = vim.split(text, "\n", { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    table.insert(virt_lines, { { lines[i], "ComplHint" } })
  end
  vim.api.nvim_buf_set_extmark(bufnr, M.ns, row, col, {
    virt_text = { { lines[1], "ComplHint" } },
    virt_text_pos = "inline",
    virt_lines = virt_lines,
    hl_mode = "combine",
  })
end

local function request(client, bufnr)
  local win = vim.fn.bufwinid(bufnr)
  if win == -1 then
    return
  end
  local cursor = vim.api.nvim_win_get_cursor(win)
  local row, col = cursor[1] - 1, cursor[2]
  local params = vim.lsp.util.make_position_params(win, client.offset_encoding)
  params.context = { triggerKind = 2 }
  local ok, id = util.request(client, "textDocument/inlineCompletion", params, function(err, result)
    local s = state[bufnr]
    if not s or err or not result then
      return
    end
    s.request_id = nil
    local items = result.items or result
    local now = vim.api.nvim_win_get_cursor(win)
    if #items == 0 or now[1] - 1 ~= row or now[2] ~= col or vim.fn.mode() ~= "i" then
      return
    end
    vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
    s.item, s.row, s.col = items[1], row, col
    draw(bufnr, items[1], row, col)
  end, bufnr)
  if ok and state[bufnr] then
    state[bufnr].request_id = id
  end
end

local function schedule(client, bufnr)
  clear(bufnr)
  if not config.language_enabled(vim.bo[bufnr].filetype) then
    return
  end
  local timer = vim.uv.new_timer()
  state[bufnr] = { timer = timer, client = client }
  timer:start(config.options.debounce_ms, 0, vim.schedule_wrap(function()
    local s = state[bufnr]
    if s and s.timer == timer then
      s.timer:close()
      s.timer = nil
      request(client, bufnr)
    end
  end))
end

local function accept_own(bufnr)
  local s = state[bufnr]
  if not s or not s.item then
    return false
  end
  local item, client = s.item, s.client
  clear(bufnr)
  vim.schedule(function()
    local text = type(item.insertText) == "string" and item.insertText or item.insertText.value
    local lines = vim.split(text, "\n", { plain = true })
    local r = item.range
    local sr, sc, er, ec = s.row, s.col, s.row, s.col
    if r then
      local line = vim.api.nvim_buf_get_lines(bufnr, r.start.line, r.start.line + 1, false)[1] or ""
      sr, sc = r.start.line, util.byteindex(line, client.offset_encoding, r.start.character)
      local eline = vim.api.nvim_buf_get_lines(bufnr, r["end"].line, r["end"].line + 1, false)[1] or ""
      er, ec = r["end"].line, util.byteindex(eline, client.offset_encoding, r["end"].character)
    end
    vim.api.nvim_buf_set_text(bufnr, sr, sc, er, ec, lines)
    vim.api.nvim_win_set_cursor(0, { sr + #lines, (#lines == 1 and sc or 0) + #lines[#lines] })
    if item.command then
      util.request(client, "workspace/executeCommand", item.command, function() end, bufnr)
    end
  end)
  return true
end

-- ---------------------------------------------------------------- both
--- Accept the visible suggestion; false when there is none.
function M.accept()
  local bufnr = vim.api.nvim_get_current_buf()
  if builtin() then
    return vim.lsp.inline_completion.get({ bufnr = bufnr })
  end
  return accept_own(bufnr)
end

local function map_accept()
  local key = config.options.accept_key
  if not key or mapped then
    return
  end
  mapped = true
  vim.keymap.set("i", key, function()
    if M.accept() then
      return ""
    end
    return vim.api.nvim_replace_termcodes(key, true, true, true)
  end, { expr = true, replace_keycodes = false, desc = "copilot: accept the suggestion, else " .. key })
end

function M.setup()
  map_accept()
end

--- copilot/cursorMoved: where the cursor comes to rest after a move that was not an edit, the server reads the
--- prompt ahead of the first keystroke (lsp/features/cursor.py). Debounced; typing sends nothing.
local REST_MS, EDIT_GRACE_MS = 250, 100
local function watch_cursor(client, bufnr, group)
  local seq, last_edit, last_sent = 0, -math.huge, nil
  local now = (vim.uv or vim.loop).now
  vim.api.nvim_create_autocmd({ "TextChanged", "TextChangedI", "TextChangedP" }, {
    group = group,
    buffer = bufnr,
    callback = function()
      last_edit = now()
      seq = seq + 1
    end,
  })
  vim.api.nvim_create_autocmd({ "CursorMoved", "CursorMovedI" }, {
    group = group,
    buffer = bufnr,
    callback = function()
      seq = seq + 1
      local mine, moved_at = seq, now()
      if moved_at - last_edit < EDIT_GRACE_MS or not config.options.enable then
        return
      end
      vim.defer_fn(function()
        if mine ~= seq or last_edit >= moved_at or vim.api.nvim_get_current_buf() ~= bufnr then
          return
        end
        local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
        local key = params.position.line .. ":" .. params.position.character
        if key ~= last_sent then
          last_sent = key
          util.notify(client, "copilot/cursorMoved", params)
        end
      end, REST_MS)
    end,
  })
end

--- Called from on_attach for each buffer.
function M.attach(client, bufnr)
  local group = vim.api.nvim_create_augroup("copilot.inline." .. bufnr, { clear = true })
  watch_cursor(client, bufnr, group)
  -- A suggestion left without accepting it counts as rejected (feedback for the nightly job).
  vim.api.nvim_create_autocmd("InsertLeave", {
    group = group,
    buffer = bufnr,
    callback = function()
      local s = state[bufnr]
      local id = s and s.item and s.item.command and s.item.command.arguments and s.item.command.arguments[1]
      if not builtin() and id then
        util.notify(client, "copilot/rejected", { id = id })
      end
      clear(bufnr)
    end,
  })
  if builtin() then
    vim.lsp.inline_completion.enable(config.options.enable and config.language_enabled(vim.bo[bufnr].filetype), { bufnr = bufnr })
    return
  end
  vim.api.nvim_create_autocmd({ "TextChangedI", "TextChangedP" }, {
    group = group,
    buffer = bufnr,
    callback = function()
      schedule(client, bufnr)
    end,
  })
  vim.api.nvim_create_autocmd("CursorMovedI", {
    group = group,
    buffer = bufnr,
    callback = function()
      local s = state[bufnr]
      if s and s.item then
        local c = vim.api.nvim_win_get_cursor(0)
        if c[1] - 1 ~= s.row or c[2] ~= s.col then
          clear(bufnr)
        end
      end
    end,
  })
  vim.api.nvim_create_autocmd("BufUnload", { group = group, buffer = bufnr, callback = function() clear(bufnr) end })
end

function M.set_enabled(on)
  for _, client in ipairs(vim.lsp.get_clients({ name = require("copilot").name })) do
    for bufnr in pairs(client.attached_buffers) do
      if builtin() then
        vim.lsp.inline_completion.enable(on and config.language_enabled(vim.bo[bufnr].filetype), { bufnr = bufnr })
      elseif not on then
        clear(bufnr)
      end
    end
  end
end

return M
