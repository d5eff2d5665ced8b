-- Builds a fresh global environment for every script run. Runs once per Lua state with
-- the real globals, a time check, the safe os table and whether the state is sandboxed.
local G, expired, safe_os, sandboxed = ...
local error, pairs, setmetatable, tostring = error, pairs, setmetatable, tostring
local pcall, xpcall = pcall, xpcall

local TIMEOUT = "lua script exceeded its time limit"

-- pcall/xpcall must not swallow the time-limit error
local function guard(...)
  if expired() then error(TIMEOUT, 0) end
  return ...
end
local function guarded_pcall(...) return guard(pcall(...)) end
local function guarded_xpcall(...) return guard(xpcall(...)) end

if not sandboxed then
  G.os.exit = nil
  G.os.time = safe_os.time
  G.os.date = safe_os.date
  return function(obj, params)
    local env = setmetatable({}, { __index = G })
    env._G = env
    env.pcall, env.xpcall = guarded_pcall, guarded_xpcall
    env.obj, env.actionParams = obj, params
    return env
  end
end

local base = {
  "assert", "error", "ipairs", "next", "pairs", "print", "rawequal", "rawget", "rawset",
  "select", "tonumber", "tostring", "type", "unpack", "setmetatable", "getmetatable",
  "_VERSION",
}
local libs = { string = G.string, table = G.table, math = G.math }

-- the shared string metatable must not be reachable for modification
getmetatable("").__metatable = false

local function readonly(name, lib)
  return setmetatable({}, {
    __index = lib,
    __newindex = function() error("attempt to modify read-only table '" .. name .. "'", 2) end,
    __metatable = false,
  })
end

return function(obj, params)
  local env = {}
  for i = 1, #base do env[base[i]] = G[base[i]] end
  for name, lib in pairs(libs) do env[name] = readonly(name, lib) end
  local os = readonly("os", safe_os)
  env.os = os
  env.require = function(name)
    if name == "os" then return os end
    error("module '" .. tostring(name) .. "' not found", 2)
  end
  env.pcall, env.xpcall = guarded_pcall, guarded_xpcall
  env._G = env
  env.obj, env.actionParams = obj, params
  return env
end
