#!/usr/bin/env python3
"""The base-vs-derived job of METHODS §1.5 (N prompts, k, one base and its derivatives) on
GGUF files run by llama.cpp (llama-cpp-python, CPU): the published pipeline's GGUF engine,
for the GGUF case of BENCHMARKS.md (src/bench/gguf.ts). Same steps as
tools/bench_torch_lineage.py: prompts generated from the base one at a time with the KV
cache (prefix 8, total 64, each next token drawn from the 50 lowest logits over the
normal tokens), then one pass per prompt and model and the k lowest logits of the last
position. llama.cpp computes the last position's logits only (logits_all off).

    python tools/bench_llamacpp_lineage.py BASE.gguf DERIVED.gguf... [--num-prompts 10 --k 2000 --threads 2]

Prints one JSON document: load seconds per model, total wall and CPU seconds, peak RSS, scores.
"""
import argparse
import json
import random
import resource
import time

import numpy as np
import llama_cpp
from llama_cpp import Llama


def load(path, threads):
    t = time.perf_counter()
    # KV cache in F32 (type 0) as modelprint keeps it; flash attention off.
    llm = Llama(model_path=path, n_ctx=128, n_batch=128, n_threads=threads, n_threads_batch=threads, logits_all=False,
                verbose=False, type_k=0, type_v=0, flash_attn=False)
    return llm, time.perf_counter() - t


def last_logits(llm):
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).copy()


def normal_tokens(llm):
    vocab = llm._model.vocab
    return [i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_get_attr(vocab, i) & llama_cpp.LLAMA_TOKEN_ATTR_NORMAL]


def prompts_from(llm, n, prefix_len, total_len, sample_k, seed):
    rng = random.Random(seed)
    ok = np.array(normal_tokens(llm))
    out = []
    for _ in range(n):
        ids = [int(rng.choice(ok)) for _ in range(prefix_len)]
        llm.reset()
        llm.eval(ids)
        logits = last_logits(llm)
        while len(ids) < total_len:
            sub = logits[ok]
            least = ok[np.argsort(sub, kind="stable")[:sample_k]]
            nxt = int(rng.choice(least))
            ids.append(nxt)
            if len(ids) == total_len:
                break
            llm.eval([nxt])
            logits = last_logits(llm)
        out.append(llm.detokenize(ids).decode("utf-8", errors="replace"))
    return out


def sketch(llm, prompts, k):
    sets = []
    for p in prompts:
        ids = llm.tokenize(p.encode("utf-8"), add_bos=False, special=False)
        llm.reset()
        llm.eval(ids)
        logits = last_logits(llm)
        if not np.isfinite(logits).all():
            raise RuntimeError("non-finite logits")
        sets.append(set(np.argsort(logits, kind="stable")[: min(k, logits.shape[0])].tolist()))
    return sets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("derived", nargs="+")
    ap.add_argument("--num-prompts", type=int, default=10)
    ap.add_argument("--k", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    t0 = time.perf_counter()
    llm, base_load = load(args.base, args.threads)
    prompts = prompts_from(llm, args.num_prompts, 8, 64, 50, 42)
    base_sets = sketch(llm, prompts, args.k)
    del llm
    loads = {args.base: base_load}
    scores = {}
    for d in args.derived:
        dllm, secs = load(d, args.threads)
        loads[d] = secs
        sets = sketch(dllm, prompts, args.k)
        scores[d] = sum(len(a & b) / len(a) for a, b in zip(base_sets, sets)) / len(sets)
        del dllm
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"engine": f"llama-cpp-python {llama_cpp.__version__} (CPU, {args.threads} threads, F32 KV cache)",
                      "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "load_s": loads,
                      "peak_rss_bytes": usage.ru_maxrss * 1024, "scores": scores}, indent=1))


if __name__ == "__main__":
    main()
