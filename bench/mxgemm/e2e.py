"""End to end: greedy decoding with a small decoder-only transformer, bf16 nn.Linear vs MXLinear.

A Llama-like model with random weights (``--layers`` 8, ``--d`` 1024, 16 heads, MLP 4x with GELU,
vocabulary 32,000, pre-LayerNorm, no biases), in bf16. Every nn.Linear, the LM head included, is
swapped for ``slimops.nn.MXLinear`` (``convert_linears``: weights quantized from the same bf16 model;
the embedding stays bf16), whose forward is the fused ``mx_linear``. Each variant prefills a
``--prompt``-token prompt, then greedily decodes ``--tokens`` tokens at batch 1 with a KV cache (every
linear at M = 1). Variants are timed round by round, interleaved (``--rounds``); each one's best
round gives its decode tokens per second (prefill excluded).

    python bench/mxgemm/e2e.py --out bench/reports/mxgemm-cpu-2core/e2e.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
import torch.nn.functional as F
from torch import nn

import slimops
import slimops.nn as snn


class Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

    def forward(self, x, cache):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if cache:  # the previous tokens' keys and values
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        cache[:] = [k, v]
        a = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(a)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class Decoder(nn.Module):
    def __init__(self, vocab: int, d: int, layers: int, heads: int):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)

    def forward(self, idx, caches, pos: int):
        x = self.tok(idx)
        for blk, cache in zip(self.blocks, caches):
            x = blk(x, cache)
        return self.head(self.ln(x[:, -1:]))


@torch.no_grad()
def generate(model: Decoder, prompt: torch.Tensor, tokens: int) -> tuple:
    """Greedy decoding; returns (tokens, prefill seconds, decode seconds)."""
    caches = [[] for _ in model.blocks]
    t0 = time.perf_counter()
    nxt = model(prompt, caches, 0).argmax(-1)
    t1 = time.perf_counter()
    out = [nxt]
    for i in range(tokens - 1):
        nxt = model(nxt, caches, prompt.shape[1] + i).argmax(-1)
        out.append(nxt)
    t2 = time.perf_counter()
    return torch.cat(out, 1), t1 - t0, t2 - t1


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the linear layers' weights (packed MX or dense) that one token reads."""
    total = 0
    for m in model.modules():
        if isinstance(m, snn.MXLinear):
            w = m.weight_mx
            total += w.data.numel() + w.scales.numel()
        elif isinstance(m, nn.Linear):
            total += m.weight.numel() * m.weight.element_size()
    return total


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--d", type=int, default=1024)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--prompt", type=int, default=16)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--formats", default="bf16,mxint8,mxfp8_e4m3,mxint4,mxfp4_e2m1")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = Decoder(args.vocab, args.d, args.layers, args.heads)
    for m in base.modules():  # weights of ordinary magnitude (std 0.02), as trained LMs have
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
    base = base.to(torch.bfloat16).eval()
    models = {}
    for fmt in args.formats.split(","):
        if fmt == "bf16":
            models[fmt] = base
        else:
            m = Decoder(args.vocab, args.d, args.layers, args.heads).to(torch.bfloat16).eval()
            m.load_state_dict(base.state_dict())
            models[fmt] = snn.convert_linears(m, fmt)
    prompt = torch.randint(0, args.vocab, (1, args.prompt), generator=torch.Generator().manual_seed(1))
    results = {f: {"decode_s": [], "prefill_s": []} for f in models}
    for f, m in models.items():  # warm up (first-touch of buffers, import of kernels)
        generate(m, prompt, 4)
    for _ in range(args.rounds):
        for f, m in models.items():
            toks, pre, dec = generate(m, prompt, args.tokens)
            results[f]["decode_s"].append(dec)
            results[f]["prefill_s"].append(pre)
            results[f]["tokens"] = toks[0, :16].tolist()
    base_tps = None
    for f, r in results.items():
        r["decode_tokens_per_s"] = (args.tokens - 1) / min(r["decode_s"])
        r["prefill_ms"] = 1e3 * min(r["prefill_s"])
        r["linear_weight_mb"] = weight_bytes(models[f]) / 1e6
        base_tps = base_tps or (r["decode_tokens_per_s"] if f == "bf16" else None)
    for f, r in results.items():
        if base_tps:
            r["speedup_vs_bf16"] = r["decode_tokens_per_s"] / base_tps
        print(f"{f:12s} {r['decode_tokens_per_s']:8.1f} tokens/s  x{r.get('speedup_vs_bf16', float('nan')):.2f} "
              f"vs bf16  prefill {r['prefill_ms']:.1f} ms  linear weights {r['linear_weight_mb']:.0f} MB")
    out = {"config": vars(args), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "cpu": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "slimops_info_isa": slimops.info()["cpu_features"].get("isa"), "results": results}
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=1)
    return out


if __name__ == "__main__":
    main()
