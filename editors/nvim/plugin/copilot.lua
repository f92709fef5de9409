-- Commands exist as soon as the plugin is on the runtimepath; the server starts on require("copilot").setup().
if vim.g.loaded_copilot_selfhosted then
  return
end
vim.g.loaded_copilot_selfhosted = true

vim.api.nvim_create_user_command("CopilotExplain", function(args)
  local range = nil
  if args.range > 0 then
    range = { args.line1, args.line2 }
  end
  require("copilot.explain").explain(range)
end, { range = true, desc = "Explain the file, or the selected lines, in a floating window" })

vim.api.nvim_create_user_command("CopilotStatus", function()
  require("copilot.status").show()
end, { desc = "Show the copilot server's model, adapter and last latency" })

vim.api.nvim_create_user_command("CopilotStats", function()
  require("copilot.status").show_stats()
end, { desc = "Show how many suggestions were shown and accepted, per adapter version" })

vim.api.nvim_create_user_command("CopilotToggle", function()
  require("copilot").toggle()
end, { desc = "Turn copilot completions on/off" })
