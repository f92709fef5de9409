-- Neovim plugin tests against the REAL copilot-lsp with a tiny model, in headless Neovim:
--   COPILOT_LSP=... COPILOT_TINY_MODEL=... COPILOT_GHOST=builtin|extmarks \
--   nvim --headless -u NONE -i NONE -c "luafile editors/nvim/tests/test_copilot.lua"
local here = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h")
local root = vim.fn.fnamemodify(here, ":h")
vim.opt.runtimepath:prepend(root)
package.path = here .. "/?.lua;" .. package.path
vim.cmd("filetype on")
vim.cmd("runtime plugin/copilot.lua")
local H = require("harness")

local server = assert(os.getenv("COPILOT_LSP"), "COPILOT_LSP must name copilot-lsp")
-- COPILOT_TEST_MODEL (e.g. the embedded qwen2.5-coder-0.5b) runs the same tests on a real model; its converted
-- files are shared from COPILOT_MODELS_FROM/models, the rest of the data root is fresh.
local model = os.getenv("COPILOT_TEST_MODEL") or os.getenv("COPILOT_TINY_MODEL")
assert(model, "COPILOT_TINY_MODEL (or COPILOT_TEST_MODEL) must name a model")
local ghost = os.getenv("COPILOT_GHOST") or "builtin"
local home = vim.fn.tempname()
vim.fn.mkdir(home, "p")
if os.getenv("COPILOT_MODELS_FROM") then
  local models = os.getenv("COPILOT_MODELS_FROM") .. "/models"
  vim.fn.mkdir(models, "p")
  assert(vim.uv.fs_symlink(models, home .. "/models"))
end
vim.env.COPILOT_HOME = home
vim.env.OMP_WAIT_POLICY = "PASSIVE"
vim.env.HF_HUB_OFFLINE, vim.env.TRANSFORMERS_OFFLINE, vim.env.HF_DATASETS_OFFLINE = "1", "1", "1"

local copilot = require("copilot")
local inline = require("copilot.inline")
local dir = vim.fn.tempname()
vim.fn.mkdir(dir, "p")
-- A root marker makes this folder the file's project: the server indexes it, not the cwd (the checkout
-- running the tests), so the prompt is the same wherever the tests run.
vim.fn.writefile({}, dir .. "/.copilot.toml")
local file = dir .. "/mathy.py"
vim.fn.writefile({ "def add(a, b):", "    return a + b", "", "", "def mul(a, b):", "" }, file)

local function status()
  local st
  require("copilot.status").fetch(function(s)
    st = s or false
  end)
  H.wait_until(function() return st ~= nil end, 5000, "copilot.status")
  return st
end

H.test("setup starts the server and attaches to a python buffer (" .. ghost .. " ghost text)", function()
  copilot.setup({ cmd = { server, "--model", model }, ghost_text = ghost, debounce_ms = 20, languages = { markdown = false } })
  vim.cmd("edit " .. file)
  H.eq(vim.bo.filetype, "python")
  local client = H.wait_until(function() return copilot.client(0) end, 10000, "client attached")
  H.eq(client.name, "copilot")
  local st = H.wait_until(function()
    local s = status()
    return s and s.state ~= "loading" and s or nil
  end, 60000, "model loaded")
  H.eq(st.state, "ready", "model state (error: " .. tostring(st.error) .. ")")
  H.eq(copilot.has_builtin_inline(), ghost == "builtin")
  print(("  (%s, %s on %s)"):format(tostring(vim.version()), tostring(st.model), tostring(st.backend)))
end)

H.test("typing shows ghost text at the cursor", function()
  vim.api.nvim_win_set_cursor(0, { 6, 0 })
  H.feed("i    ")
  -- A real model's first answer reads its whole prompt cold: seconds on a busy 2-core machine.
  local ok, text = pcall(H.wait_until, function() return inline.visible_text(0) end,
    os.getenv("COPILOT_TEST_MODEL") and 45000 or 15000, "ghost text extmark")
  if not ok then
    local st = status() or {}
    error(("%s; server: latency %s ms, counters %s, scheduler %s"):format(tostring(text), tostring(st.last_latency_ms),
      vim.inspect(st.counters, { newline = " ", indent = "" }), vim.inspect(st.scheduler, { newline = " ", indent = "" })), 0)
  end
  H.truthy(#text > 0, "non-empty ghost text")
  H.eq(vim.fn.mode(), "i")
  H.eq(vim.api.nvim_buf_get_lines(0, 5, 6, false)[1], "    ", "ghost text is not in the buffer yet")
  _G.shown_text = text
end)

H.test("the accept key inserts the suggestion and the server records the acceptance", function()
  H.feed("<Tab>")
  H.wait_until(function() return vim.api.nvim_buf_get_lines(0, 5, 6, false)[1] ~= "    " end, 5000, "buffer changed")
  local line = table.concat(vim.api.nvim_buf_get_lines(0, 5, -1, false), "\n")
  -- compared as displayed: the tiny random model may suggest control characters, which ghost text shows as ^A
  H.eq(vim.fn.strtrans(line), vim.fn.strtrans("    " .. _G.shown_text), "the visible ghost text was inserted")
  local fb = home .. "/feedback/lsp-feedback.jsonl"
  local rows = H.wait_until(function()
    return vim.fn.filereadable(fb) == 1 and vim.fn.readfile(fb) or nil
  end, 5000, "feedback file")
  local events = vim.tbl_map(function(r) return vim.json.decode(r).event end, rows)
  H.truthy(vim.tbl_contains(events, "accepted"), vim.inspect(events))
  H.feed("<Esc>")
  H.wait_until(function() return vim.fn.mode() == "n" end, 3000, "normal mode")
end)

H.test("the accept key falls through to a plain <Tab> without a suggestion", function()
  copilot.toggle(false)
  H.eq(vim.fn.mode(), "n")
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { "x = 1", "" })
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  H.feed("ia<Tab>b<Esc>")
  H.wait_until(function() return vim.fn.mode() == "n" end, 3000, "normal mode")
  H.sleep(300)
  H.eq(vim.api.nvim_buf_get_lines(0, 1, 2, false)[1], "a\tb")
  H.eq(inline.visible_text(0), nil, "no ghost text while toggled off")
  copilot.toggle(true)
  vim.cmd("silent! undo")
  vim.cmd("edit! " .. file)
end)

H.test("a cursor that comes to rest at a new place tells the server (copilot/cursorMoved); typing does not", function()
  local before = status().counters.cursor_moves
  vim.api.nvim_win_set_cursor(0, { 1, 2 })
  local st = H.wait_until(function()
    local s = status()
    return s.counters.cursor_moves > before and s or nil
  end, 5000, "copilot/cursorMoved reached the server")
  local moves = st.counters.cursor_moves
  H.feed("A# abc<Esc>")
  H.wait_until(function() return vim.fn.mode() == "n" end, 3000, "normal mode")
  H.sleep(400)
  H.eq(status().counters.cursor_moves, moves, "typing moved the cursor without a cursorMoved")
  vim.cmd("silent! undo")
end)

H.test(":CopilotStatus reports model, adapter and latency", function()
  local st = status()
  local roots = vim.tbl_map(function(c) return c.root_dir end, vim.lsp.get_clients({ name = "copilot" }))
  H.eq(#roots, 1, "one server for the session (roots: " .. table.concat(roots, ", ") .. ")")
  H.eq(st.model, model)
  H.truthy(type(st.last_latency_ms) == "number", "last latency")
  local line = require("copilot.status").format(st)
  H.truthy(line:find("adapter base", 1, true), line)
  H.truthy(line:find("completions on", 1, true), line)
end)

H.test(":CopilotStats shows shown and accepted suggestions per adapter version", function()
  local res
  require("copilot.status").fetch_stats(function(r) res = r or false end)
  H.wait_until(function() return res ~= nil end, 5000, "copilot.stats")
  local all
  for _, r in ipairs(res.by_version or {}) do
    if r.version == "all" then all = r end
  end
  H.truthy(all and all.shown >= 1 and all.accepted == 1, vim.inspect(res))
  local text = table.concat(require("copilot.status").format_stats(res), "\n")
  H.truthy(text:find("base model", 1, true) and text:find("accepted 1", 1, true), text)
  vim.cmd("CopilotStats")
end)

H.test(":CopilotExplain opens a window with the markdown explanation", function()
  vim.cmd("CopilotExplain")
  local explain = require("copilot.explain")
  H.truthy(explain.win and vim.api.nvim_win_is_valid(explain.win), "explain window")
  local text = H.wait_until(function()
    local t = table.concat(vim.api.nvim_buf_get_lines(explain.buf, 0, -1, false), "\n")
    return not explain.busy and t:find("### `mul`", 1, true) and t or nil
  end, 20000, "explanation text")
  H.truthy(text:find("### `add`", 1, true), text)
  H.eq(vim.bo[explain.buf].filetype, "markdown")
  H.eq(vim.api.nvim_win_get_config(explain.win).relative, "editor", "a floating window")
  vim.api.nvim_win_close(explain.win, true)
end)

H.test(":CopilotExplain on a visual selection explains only those lines", function()
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  H.feed("Vj:CopilotExplain<CR>")
  local explain = require("copilot.explain")
  local text = H.wait_until(function()
    if not (explain.win and vim.api.nvim_win_is_valid(explain.win)) then return nil end
    local t = table.concat(vim.api.nvim_buf_get_lines(explain.buf, 0, -1, false), "\n")
    return not explain.busy and t:find("^### ") and t or nil
  end, 20000, "selection explanation")
  H.truthy(not text:find("### `mul`", 1, true), "only the selected function: " .. text)
  vim.api.nvim_win_close(explain.win, true)
end)

H.test(":checkhealth copilot reports the server ready", function()
  vim.cmd("checkhealth copilot")
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  H.truthy(text:find("server command:", 1, true), text)
  H.truthy(text:find("[ready", 1, true), text)
  H.truthy(not text:find("ERROR", 1, true), text)
  vim.cmd("bwipeout!")
end)

H.run()
