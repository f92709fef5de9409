-- A tiny test harness for headless Neovim (plenary is not available offline).
-- Tests run one after another inside a coroutine driven by the main loop, so typeahead
-- (nvim_feedkeys), timers and LSP messages are processed while a test waits.
local H = { tests = {}, failures = 0 }

function H.test(name, fn)
  table.insert(H.tests, { name = name, fn = fn })
end

--- Let the main loop run for `ms` (typeahead included).
function H.sleep(ms)
  local co = coroutine.running()
  vim.defer_fn(function()
    coroutine.resume(co)
  end, ms)
  coroutine.yield()
end

--- Wait until `cond()` is truthy (returns its value) or fail after `timeout` ms.
function H.wait_until(cond, timeout, what)
  local deadline = vim.uv.now() + (timeout or 10000)
  while true do
    local ok, v = pcall(cond)
    if ok and v then
      return v
    end
    if vim.uv.now() > deadline then
      error(("timed out waiting for %s%s"):format(what or "condition", ok and "" or (": " .. tostring(v))), 2)
    end
    H.sleep(50)
  end
end

function H.eq(a, b, msg)
  if not vim.deep_equal(a, b) then
    error(("%s: expected %s, got %s"):format(msg or "eq", vim.inspect(b), vim.inspect(a)), 2)
  end
end

function H.truthy(v, msg)
  if not v then
    error((msg or "expected a truthy value") .. ": got " .. vim.inspect(v), 2)
  end
  return v
end

function H.feed(keys)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), "t", false)
end

function H.run()
  local co = coroutine.create(function()
    for _, t in ipairs(H.tests) do
      if H.failures > 0 then
        -- the tests share one editor session: after a failure the rest would only time out
        io.stdout:write("\nnot ok - " .. t.name .. " # SKIP after an earlier failure\n")
        H.failures = H.failures + 1
        goto continue
      end
      local ok, err = xpcall(t.fn, debug.traceback)
      if ok then
        io.stdout:write("\nok - " .. t.name .. "\n")
      else
        H.failures = H.failures + 1
        io.stdout:write("\nnot ok - " .. t.name .. "\n  " .. tostring(err):gsub("\n", "\n  ") .. "\n")
      end
      ::continue::
    end
    io.stdout:write(("\n%d tests, %d failed\n"):format(#H.tests, H.failures))
    vim.schedule(function()
      vim.cmd((H.failures == 0) and "qall!" or "cquit! 1")
    end)
  end)
  vim.schedule(function()
    local ok, err = coroutine.resume(co)
    if not ok then
      io.stdout:write("harness error: " .. tostring(err) .. "\n")
      vim.cmd("cquit! 2")
    end
  end)
end

return H
