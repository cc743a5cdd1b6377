#!/usr/bin/env python3
"""GGUF quantizations of the safetensors benchmark checkpoint (Qwen2.5-0.5B's config, bf16,
written by `tools/gen_hf_fixtures.py --bench`) for the GGUF case of `npm run bench`
(src/bench/gguf.ts), made with llama.cpp's own tools: convert_hf_to_gguf.py to BF16, then
llama_model_quantize to Q8_0 and Q4_K_M.

The benchmark checkpoints carry a word-level tokenizer, which GGUF cannot hold, so the
converted folder gets the byte-level BPE tokenizer of test/fixtures/hf (vocab 512; the
converter pads the vocabulary to the embedding's 151,936 rows with [PAD] tokens, typed
here as control tokens so that neither engine samples them). The weights are the
checkpoint's own.

    LLAMA_CPP_DIR=/path/to/llama.cpp /tmp/ggufvenv/bin/python tools/gen_gguf_bench.py BENCH_CHECKPOINT OUT_DIR

Writes OUT_DIR/base-Q8_0.gguf and OUT_DIR/base-Q4_K_M.gguf (not committed: about 0.5 and 0.4 GB).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_gguf_fixtures as gg  # noqa: E402


def control_padding(path):
    """The converter's [PAD<i>] rows (type UNUSED) become control tokens, which no engine samples:
    real GGUF vocabularies have no 150,000 padding entries, and the prompts stay 64 tokens long."""
    import gguf
    r = gguf.GGUFReader(path, "r+")
    tokens = r.fields["tokenizer.ggml.tokens"]
    types = r.fields["tokenizer.ggml.token_type"]
    n = 0
    for i, (ti, yi) in enumerate(zip(tokens.data, types.data)):
        if bytes(tokens.parts[ti]).startswith(b"[PAD") and types.parts[yi][0] == gguf.TokenType.UNUSED:
            types.parts[yi][0] = gguf.TokenType.CONTROL
            n += 1
    r.data.flush()
    print(f"{n} padding tokens typed as control", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", help="folder with config.json + model.safetensors")
    ap.add_argument("out")
    ap.add_argument("--types", default="Q8_0,Q4_K_M")
    args = ap.parse_args()
    llama_dir = os.environ.get("LLAMA_CPP_DIR", "")
    if not os.path.exists(os.path.join(llama_dir, "convert_hf_to_gguf.py")):
        sys.exit("set LLAMA_CPP_DIR to a llama.cpp source tree (convert_hf_to_gguf.py, gguf-py)")
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        src = os.path.join(tmp, "hf")
        os.makedirs(src)
        for f in ("config.json", "model.safetensors"):
            try:
                os.link(os.path.join(args.checkpoint, f), os.path.join(src, f))
            except OSError:
                shutil.copy(os.path.join(args.checkpoint, f), os.path.join(src, f))
        shutil.copy(os.path.join(gg.HF, "llama", "tokenizer.json"), os.path.join(src, "tokenizer.json"))
        tc = json.load(open(os.path.join(gg.HF, "llama", "tokenizer_config.json")))
        tc["tokenizer_class"] = "PreTrainedTokenizerFast"
        json.dump(tc, open(os.path.join(src, "tokenizer_config.json"), "w"))
        bf16 = os.path.join(tmp, "base-BF16.gguf")
        gg.convert(llama_dir, src, "bf16", bf16)
        control_padding(bf16)
        for q in args.types.split(","):
            dst = os.path.join(args.out, f"base-{q}.gguf")
            gg.quantize(bf16, dst + ".tmp", q)
            os.replace(dst + ".tmp", dst)
            print(f"wrote {dst} ({os.path.getsize(dst) / 2**20:.0f} MiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
