-- Neovim config for the screenshot: the plugin from this checkout, the real copilot-lsp.
local root = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h:h")
vim.opt.runtimepath:prepend(root)
vim.cmd("filetype plugin indent on")
vim.cmd("syntax on")
vim.o.termguicolors = true
vim.o.number = true
vim.o.laststatus = 2
vim.o.statusline = " %t  %=%{v:lua.copilot_status()} "
vim.cmd("runtime plugin/copilot.lua")
local st = ""
function _G.copilot_status()
  return st
end
local timer = vim.uv.new_timer()
timer:start(500, 1000, vim.schedule_wrap(function()
  require("copilot.status").fetch(function(s)
    if s then
      st = require("copilot.status").format(s):gsub("^copilot: ", "copilot ")
      vim.cmd("redrawstatus")
    end
  end)
end))
require("copilot").setup({ cmd = { os.getenv("COPILOT_LSP") or "copilot-lsp" } })
