#!/usr/bin/env python3
"""The base-vs-derived job of METHODS §1.5 (N prompts, k, one base and its derivatives) run
by transformers + PyTorch on the CPU: the published pipeline's engine, for BENCHMARKS.md.

    python tools/bench_torch_lineage.py BASE DERIVED... [--num-prompts 10 --k 2000]

Prints one JSON document: load seconds per model, total wall and CPU (user + system) seconds, peak RSS, scores.
"""
import argparse
import json
import random
import resource
import time

import torch
import os

from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM


def load(path):
    t = time.perf_counter()
    # The checkpoint's tokenizer.json through the tokenizers library (what AutoTokenizer wraps).
    tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    # The published pipeline computes in float32 on the CPU.
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    model.eval()
    return tok, model, time.perf_counter() - t


def allowed(tok, width):
    special = {i for i, t in tok.get_added_tokens_decoder().items() if t.special}
    return [i for i in range(min(tok.get_vocab_size(), width)) if i not in special]


@torch.no_grad()
def prompts_from(tok, model, n, prefix_len, total_len, sample_k, seed):
    rng = random.Random(seed)
    width = model.get_output_embeddings().weight.shape[0]
    ok = allowed(tok, width)
    ok_t = torch.tensor(ok)
    out = []
    for _ in range(n):
        ids = [rng.choice(ok) for _ in range(prefix_len)]
        res = model(input_ids=torch.tensor([ids]), use_cache=True)
        past = res.past_key_values
        logits = res.logits[0, -1]
        while len(ids) < total_len:
            sub = logits[ok_t]
            least = ok_t[torch.argsort(sub, stable=True)[:sample_k]].tolist()
            nxt = rng.choice(least)
            ids.append(nxt)
            if len(ids) == total_len:
                break
            res = model(input_ids=torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
            past = res.past_key_values
            logits = res.logits[0, -1]
        out.append(tok.decode(ids, skip_special_tokens=True))
        assert len(tok.encode(out[-1]).ids) > 1, "prompt text does not round-trip through the tokenizer"
    return out


@torch.no_grad()
def sketch(tok, model, prompts, k):
    sets = []
    for p in prompts:
        ids = torch.tensor([tok.encode(p).ids])
        logits = model(input_ids=ids).logits[0, -1]
        if not torch.isfinite(logits).all():
            raise RuntimeError("non-finite logits")
        sets.append(set(torch.argsort(logits, stable=True)[: min(k, logits.shape[0])].tolist()))
    return sets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("derived", nargs="+")
    ap.add_argument("--num-prompts", type=int, default=10)
    ap.add_argument("--k", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    tok, model, base_load = load(args.base)
    prompts = prompts_from(tok, model, args.num_prompts, 8, 64, 50, 42)
    base_sets = sketch(tok, model, prompts, args.k)
    del model
    loads = {args.base: base_load}
    scores = {}
    for d in args.derived:
        dtok, dmodel, secs = load(d)
        loads[d] = secs
        sets = sketch(dtok, dmodel, prompts, args.k)
        scores[d] = sum(len(a & b) / len(a) for a, b in zip(base_sets, sets)) / len(sets)
        del dmodel
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss * 1024
    print(json.dumps({"engine": f"transformers {__import__('transformers').__version__} + torch {torch.__version__} (CPU, float32)",
                      "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "load_s": loads, "peak_rss_bytes": peak,
                      "scores": scores}, indent=1))


if __name__ == "__main__":
    main()
