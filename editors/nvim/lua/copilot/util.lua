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

--- Byte column of an LSP `character` in `line` (`str_byteindex` changed its signature in 0.11).
function M.byteindex(line, encoding, character)
  if new_api then
    return vim.str_byteindex(line, encoding, character, false)
  end
  if encoding == "utf-8" then
    return math.min(character, #line)
  end
  local ok, col = pcall(vim.str_byteindex, line, character, encoding == "utf-16")
  return ok and col or #line
end

--- LSP `character` of the end of `line` in `encoding`.
function M.utfindex(line, encoding)
  if new_api then
    return vim.str_utfindex(line, encoding)
  end
  if encoding == "utf-8" then
    return #line
  end
  local u32, u16 = vim.str_utfindex(line)
  return encoding == "utf-16" and u16 or u32
end

return M
