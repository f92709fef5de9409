-- Client calls that work on Neovim 0.10 (client.request) and 0.11+ (client:request).
local M = {}

local new_api = vim.fn.has("nvim-0.11") == 1

function M.request(client, method, params, handler, bufnr)
  if new_api then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.notify(client, method, params)
  if new_api then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.cancel(client, id)
  if new_api then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

return M
