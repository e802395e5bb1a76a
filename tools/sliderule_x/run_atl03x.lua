-- Drive SlideRule's x-series (Atl03DataFrame [+ SurfaceFitter]) on one local granule; dump rows to CSV.
-- usage: $SR_ROOT/install/bin/sliderule run_atl03x.lua <dir> <resource> <parms-json> <out.csv> < /dev/null
-- (SR_ROOT: SlideRule's C++ build, e.g. by /work/shared/tools/sliderule-cpp/build.sh). Rows in beam order,
-- columns sorted by name, doubles %.17g (exact); compare with compare_atl03x.py.
local json = require("json")
local dir, resource, parms_str, outfile = arg[1], arg[2], arg[3], arg[4]
core.logmon(tonumber(os.getenv("SR_LOG_LEVEL") or "") or core.ERROR):global("LogMonitor")
local asset_name = "atlas-local"
core.asset(asset_name, "nil", "file", dir, "empty.index"):global(asset_name)
local parms = icesat2.parms03(json.decode(parms_str), nil, asset_name, resource)
local h03 = h5coro.object(asset_name, resource)
local h08 = nil
if parms:stage(icesat2.ATL08) then
    h08 = h5coro.object(asset_name, (resource:gsub("ATL03", "ATL08")))
end
local f = io.open(outfile, "w")
local keys = nil
local metas = {"spot", "cycle", "region", "rgt", "gt"}
local function fmt(v)
    if type(v) == "boolean" then return v and "1" or "0" end
    if math.type(v) == "integer" then return string.format("%d", v) end
    if type(v) == "number" then return string.format("%.17g", v) end
    return tostring(v)
end
for _, beam in ipairs(parms["beams"]) do
    local df = icesat2.atl03x(beam, parms, h03, h08, nil, core.EVENTQ)
    if df then
        if parms:stage(icesat2.FITTER) then df:run(icesat2.fit(parms)) end
        df:run(core.TERMINATE)
        df:finished(600000)
        local n = df:numrows()
        for i = 1, n do
            local row = df:row(i)
            if not keys then
                keys = {}
                for k, _ in pairs(row) do table.insert(keys, k) end
                table.sort(keys)
                f:write("beam," .. table.concat(keys, ",") .. "," .. table.concat(metas, ",") .. "\n")
            end
            local out = {beam}
            for _, k in ipairs(keys) do table.insert(out, fmt(row[k])) end
            for _, k in ipairs(metas) do table.insert(out, fmt(df:meta(k))) end
            f:write(table.concat(out, ",") .. "\n")
        end
    end
end
f:close()
sys.quit(0)
