-- Options of require("copilot").setup({...}) and their defaults.
local M = {}

M.defaults = {
  cmd = nil, -- server command (list or string); nil = <cwd>/.venv/bin/copilot-lsp, then copilot-lsp on PATH
  model = nil, -- base model (packaged name or folder); nil = the server's configured default
  adapter = nil, -- adapter "NAME[@VERSION]" or folder; "" = base model; nil = workspace mapping
  enable = true, -- show inline completions
  filetypes = nil, -- list of filetypes to attach to; nil = every filetype
  languages = {}, -- per-language enable, e.g. { markdown = false, ["*"] = true }
  debounce_ms = 75, -- own ghost text (Neovim < 0.12) waits this long after typing
  max_tokens = nil, -- most tokens per completion; nil = the server's default
  ghost_text = "auto", -- "auto": built-in vim.lsp.inline_completion on >= 0.12, else "extmarks" (drawn by this plugin)
  accept_key = "<Tab>", -- accepts a visible suggestion, else falls through; false = no mapping
  root_markers = { ".git", ".copilot.toml", "pyproject.toml", "package.json" },
  explain = { layout = "float" }, -- "float" or "split"
}

M.options = vim.deepcopy(M.defaults)

local function check(name, value, kind)
  if type(value) ~= kind then
    error(("copilot.setup: %s must be a %s, got %s"):format(name, kind, vim.inspect(value)), 3)
  end
end

function M.set(opts)
  opts = opts or {}
  check("opts", opts, "table")
  local o = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts)
  check("enable", o.enable, "boolean")
  check("debounce_ms", o.debounce_ms, "number")
  check("languages", o.languages, "table")
  if o.accept_key ~= false then
    check("accept_key", o.accept_key, "string")
  end
  if not vim.tbl_contains({ "auto", "builtin", "extmarks" }, o.ghost_text) then
    error("copilot.setup: ghost_text must be \"auto\", \"builtin\" or \"extmarks\"", 2)
  end
  M.options = o
  return o
end

--- The server command as a list.
function M.server_cmd(o)
  o = o or M.options
  if type(o.cmd) == "string" then
    return { o.cmd }
  elseif type(o.cmd) == "table" then
    return o.cmd
  end
  local venv = vim.fs.joinpath(vim.fn.getcwd(), ".venv", "bin", "copilot-lsp")
  if vim.fn.executable(venv) == 1 then
    return { venv }
  end
  local onpath = vim.fn.exepath("copilot-lsp")
  if onpath ~= "" then
    return { onpath }
  end
  return nil
end

--- initializationOptions / workspace/didChangeConfiguration settings (lsp/features/configuration.py).
function M.server_settings(o)
  o = o or M.options
  local s = { enable = o.enable, languages = o.languages, debounceMs = o.debounce_ms }
  if o.model then
    s.model = o.model
  end
  if o.adapter ~= nil then
    s.adapter = o.adapter
  end
  if o.max_tokens then
    s.maxTokens = o.max_tokens
  end
  if next(s.languages) == nil then
    s.languages = vim.empty_dict()
  end
  return s
end

function M.language_enabled(ft, o)
  o = o or M.options
  if not o.enable then
    return false
  end
  if o.languages[ft] ~= nil then
    return o.languages[ft]
  end
  if o.languages["*"] ~= nil then
    return o.languages["*"]
  end
  return true
end

return M
