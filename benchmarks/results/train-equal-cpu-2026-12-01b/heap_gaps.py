"""At the trace's peak of allocated tensors: each address region's extent, the bytes in use and the free gaps between them."""
import json, sys
t = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/step_trace.json"))
mem = sorted([e for e in t["traceEvents"] if e.get("name") == "[memory]"], key=lambda e: e["ts"])
live = {}
peak = max(mem, key=lambda e: e["args"]["Total Allocated"])
for e in mem:
    a = e["args"]
    if a["Bytes"] > 0: live[a["Addr"]] = a["Bytes"]
    else: live.pop(a["Addr"], None)
    if e is peak: break
items = sorted(live.items())
# cluster into regions separated by >256MB gaps
regions = []; cur = [items[0]]
for it in items[1:]:
    if it[0] - (cur[-1][0] + cur[-1][1]) > 256e6: regions.append(cur); cur = [it]
    else: cur.append(it)
regions.append(cur)
for r in regions:
    lo = r[0][0]; hi = max(a + b for a, b in r); used = sum(b for a, b in r)
    print("region %x: extent %.1f MB used %.1f MB n=%d" % (lo, (hi-lo)/1e6, used/1e6, len(r)))
    gaps = [(r[i+1][0] - (r[i][0]+r[i][1])) for i in range(len(r)-1)]
    big = sorted(g for g in gaps if g > 100e3)
    print("   gaps>100KB: n=%d total %.1f MB, sizes MB: %s" % (len(big), sum(big)/1e6, [round(g/1e6,1) for g in big[-30:]]))
