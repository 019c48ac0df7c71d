# compute cost per call in CPU time, 1 thread, cache-resident sizes
import time, torch, slimops, sys
from slimops._backend import native_module
from slimops.mx.formats import get_format
torch.set_num_threads(1)
C = native_module("_C")
PAIRS = [("mxint8","mxint6"),("mxint8","mxint4"),("mxint8","mxint2"),("mxint6","mxint4"),("mxint6","mxint2"),("mxint4","mxint2"),
 ("mxfp8_e4m3","mxfp6_e3m2"),("mxfp8_e4m3","mxfp6_e2m3"),("mxfp8_e4m3","mxfp4_e2m1"),("mxfp8_e5m2","mxfp6_e3m2"),("mxfp8_e5m2","mxfp6_e2m3"),("mxfp8_e5m2","mxfp4_e2m1"),("mxfp6_e3m2","mxfp4_e2m1"),("mxfp6_e2m3","mxfp4_e2m1")]
R, L = 256, 4096
bs = int(sys.argv[1]) if len(sys.argv) > 1 else 32
def tmin(fn, n=30):
    best = 1e9
    for _ in range(n):
        t = time.thread_time_ns(); 
        for _ in range(10): fn()
        best = min(best, (time.thread_time_ns() - t) / 10)
    return best * 1e-9
x = torch.randn(R, L)
counts = torch.zeros(5, dtype=torch.int64)
print("path", C.mx_convert_path())
for s, d in PAIRS:
    a = slimops.mx.quantize(x, s, bs)
    fs, fd = get_format(s), get_format(d)
    od = torch.empty(R, fd.packed_bytes(L), dtype=torch.uint8); os_ = torch.empty_like(a.scales)
    def f(rep=False):
        C.mx_convert(a.data.data_ptr(), a.scales.data_ptr(), R, L, od.data_ptr(), os_.data_ptr(), fs.format_id, fd.format_id, bs, False, 1, counts.data_ptr() if rep else 0)
    f(); f(True)
    t = tmin(f); tr = tmin(lambda: f(True))
    print(f"{s:>11}->{d:<11} {t*1e6:7.1f} us  {R*L/t/1e9:5.2f} Gelem/s   report {tr*1e6:7.1f} us (+{(tr/t-1)*100:.0f}%)", flush=True)
