#!/usr/bin/env python3
"""Writes tiny GPTQ and AWQ checkpoints (quantized and saved by gptqmodel) and their reference logits.

The float checkpoints quantized here are the committed fixtures of tools/gen_hf_fixtures.py
(test/fixtures/hf/<arch>: random-initialised, saved by transformers, with the trained
512-token BPE tokenizer). Each is quantized by gptqmodel's own GPTQ / AWQ quantizers on
the CPU (calibration: a few stdlib source snippets), saved by gptqmodel's `save`, and its
reference logits are the last-position logits of the fixed prompts of
test/fixtures/hf/reference.json computed by transformers loading the quantized folder
(`from_pretrained`, float32, CPU: gptqmodel's torch kernels).

    python -m venv /tmp/gptq-venv && /tmp/gptq-venv/bin/pip install torch transformers gptqmodel
    /tmp/gptq-venv/bin/python tools/gen_quant_fixtures.py test/fixtures/hf test/fixtures/quant
"""
import argparse
import json
import os
import shutil
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

# name -> (float fixture, method, quantize-config kwargs)
VARIANTS = {
    "llama-gptq-4bit-g32-lm-head": ("llama", "gptq", dict(bits=4, group_size=32, desc_act=False, sym=True, lm_head=True)),
    "llama-gptq-4bit-g32-actorder-asym": ("llama", "gptq", dict(bits=4, group_size=32, desc_act=True, sym=False)),
    "llama-gptq-2bit-g32": ("llama", "gptq", dict(bits=2, group_size=32, desc_act=False, sym=False)),
    "qwen2-gptq-8bit-g-1-actorder": ("qwen2", "gptq", dict(bits=8, group_size=-1, desc_act=True, sym=True)),
    "qwen2-gptq-4bit-g64-asym-v2": ("qwen2", "gptq", dict(bits=4, group_size=64, desc_act=False, sym=False, format="gptq_v2")),
    "gpt_neox-gptq-4bit-g128": ("gpt_neox", "gptq", dict(bits=4, group_size=128, desc_act=True, sym=True)),
    # "gpt2-gptq-4bit-g32": ("gpt2", "gptq", dict(bits=4, group_size=32, desc_act=False, sym=True)),
    "llama-awq-4bit-g32": ("llama", "awq", dict(bits=4, group_size=32)),
    "qwen2-awq-4bit-g32-zero-point": ("qwen2", "awq", dict(bits=4, group_size=32, sym=False)),
}


def f32(x):
    """A float32 logit, 9 significant digits (round-trips float32; halves reference.json)."""
    return float(f"{float(x):.9g}")


def calibration(tok):
    """Token-id rows from two stdlib modules' source (a fixed corpus)."""
    import argparse as _a, json as _j
    text = open(_a.__file__).read()[:20000] + open(_j.__file__).read()
    ids = tok(text, add_special_tokens=False)["input_ids"]
    rows = [ids[i:i + 64] for i in range(0, min(len(ids), 64 * 32), 64)]
    return [{"input_ids": r, "attention_mask": [1] * len(r)} for r in rows if len(r) == 64]


def quantize(src, dst, method, kw):
    from gptqmodel import GPTQModel
    # offload_to_disk off: with it, gptqmodel 7.7.0 cannot save gpt_neox ("Offloaded tensor
    # 'lm_head.weight' not found"); the tiny models fit in memory anyway.
    if method == "gptq":
        from gptqmodel import QuantizeConfig
        qcfg = QuantizeConfig(offload_to_disk=False, **kw)
    else:
        from gptqmodel.quantization.config import AWQConfig
        from gptqmodel.looper import awq_processor
        # gptqmodel's clip search needs out_features % 64 == 0 (k/v are 32 wide, the MLP 96
        # here): it is turned off (AutoAWQ's apply_clip=False); the scale search, packing and
        # saving are gptqmodel's as usual.
        init = awq_processor.AWQProcessor.__init__
        if not getattr(init, "_no_clip", False):
            def no_clip(self, *a, **k):
                init(self, *a, **k)
                self.apply_clip = False
            no_clip._no_clip = True
            awq_processor.AWQProcessor.__init__ = no_clip
        qcfg = AWQConfig(offload_to_disk=False, **kw)
    tok = AutoTokenizer.from_pretrained(src)
    model = GPTQModel.load(src, qcfg, device="cpu", dtype=torch.float16)
    model.quantize(calibration(tok), batch_size=4)
    shutil.rmtree(dst, ignore_errors=True)
    model.save(dst)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(src, f), dst)
    for f in os.listdir(dst):
        if f not in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
            p = os.path.join(dst, f)
            (shutil.rmtree if os.path.isdir(p) else os.remove)(p)


def reference(d, prompt_ids):
    with open(os.path.join(d, "config.json")) as f:
        if json.load(f)["quantization_config"].get("lm_head"):
            # transformers 5.24 (+ optimum 2.3) does not quantize the head: it loads lm_head as a
            # fresh random Linear (the packed tensors unused). gptqmodel's own inference instead
            # (its torch kernel, which runs in float16 only).
            from gptqmodel import GPTQModel, BACKEND
            qm = GPTQModel.load(d, device="cpu", backend=BACKEND.GPTQ_TORCH, dtype=torch.float16)
            with torch.no_grad():
                logits = [[f32(x) for x in qm.model(input_ids=torch.tensor([ids])).logits[0, -1].float()] for ids in prompt_ids]
            return logits, "gptqmodel TorchLinear (float16)"
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, device_map="cpu")
    model.eval()
    with torch.no_grad():
        logits = [[f32(x) for x in model(input_ids=torch.tensor([ids])).logits[0, -1]] for ids in prompt_ids]
    kernel = next(type(m).__name__ for m in model.modules() if hasattr(m, "qweight"))
    return logits, kernel


def dequantized_reference(d, base_dir, method, prompt_ids):
    """The library's own dequantizer in float32, then transformers in float32 on the float architecture.

    GPTQ: gptqmodel loads the folder with its torch kernel (TorchLinear, v1 zeros converted
    to v2 by gptqmodel) and each layer's `dequantize_weight()` runs with its scales cast to
    float32. AWQ: gptqmodel's `dequantize_gemm` (AutoAWQ's unpacker) on the saved tensors,
    scales in float32. The other weights (embeddings, norms, head, biases) are the saved ones.
    """
    from safetensors.torch import load_file
    saved = load_file(os.path.join(d, "model.safetensors"))
    with open(os.path.join(d, "config.json")) as f:
        qc = json.load(f)["quantization_config"]
    weights = {}
    if method == "gptq":
        from gptqmodel import GPTQModel, BACKEND
        qm = GPTQModel.load(d, device="cpu", backend=BACKEND.GPTQ_TORCH, dtype=torch.float16)
        for n, mod in qm.model.named_modules():
            if hasattr(mod, "qweight") and hasattr(mod, "dequantize_weight"):
                mod.scales = mod.scales.to(torch.float32)
                if hasattr(mod, "clear_weight_cache"):
                    mod.clear_weight_cache()
                w = mod.dequantize_weight()
                assert w.dtype == torch.float32, (n, w.dtype)
                weights[n + ".weight"] = w.T.contiguous()
    else:
        from gptqmodel.quantization.awq.utils.packing_utils import dequantize_gemm
        for k in saved:
            if k.endswith(".qweight"):
                b = k[: -len(".qweight")]
                w = dequantize_gemm(saved[k], saved[b + ".qzeros"], saved[b + ".scales"].to(torch.float32), qc["bits"], qc["group_size"])
                weights[b + ".weight"] = w.T.contiguous()
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager")
    state = model.state_dict()
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    for k in state:
        if k in weights:
            state[k] = weights[k]
        elif k in saved:
            state[k] = saved[k].to(torch.float32)
        elif k not in tied:
            raise KeyError(f"{k}: neither dequantized nor saved")
    # a tied head is the (saved) embedding: not loaded separately, so the old value cannot win
    missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if k not in tied}, strict=False)
    assert set(missing) <= tied and not unexpected, (missing, unexpected)
    if tied:
        assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    model.eval()
    with torch.no_grad():
        return [[f32(x) for x in model(input_ids=torch.tensor([ids])).logits[0, -1]] for ids in prompt_ids]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf", help="the float fixtures (test/fixtures/hf)")
    ap.add_argument("out")
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    args.hf, args.out = os.path.abspath(args.hf), os.path.abspath(args.out)
    # gptqmodel writes its quantization logs under ./logs: keep them out of the repository
    import tempfile
    os.chdir(tempfile.mkdtemp(prefix="gen-quant-"))
    with open(os.path.join(args.hf, "reference.json")) as f:
        hf_ref = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    ref_file = os.path.join(args.out, "reference.json")
    import gptqmodel
    import transformers
    ref = {"gptqmodel": gptqmodel.__version__, "transformers": transformers.__version__, "torch": torch.__version__,
           "prompts": hf_ref["prompts"], "prompt_ids": hf_ref["prompt_ids"], "models": {}}
    if os.path.exists(ref_file):
        with open(ref_file) as f:
            ref["models"] = {k: v for k, v in json.load(f)["models"].items() if k in VARIANTS}
    for name, (base, method, kw) in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        d = os.path.join(args.out, name)
        quantize(os.path.join(args.hf, base), d, method, kw)
        logits, kernel = reference(d, ref["prompt_ids"])
        exact = dequantized_reference(d, os.path.join(args.hf, base), method, ref["prompt_ids"])
        with open(os.path.join(d, "config.json")) as f:
            qc = json.load(f)["quantization_config"]
        ref["models"][name] = {"base": base, "method": method, "quantization_config": qc, "kernel": kernel, "logits": logits,
                             "logits_dequantized": exact}
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        print(f"{name}: {size} bytes, kernel {kernel}", file=sys.stderr)
        with open(ref_file, "w") as f:
            json.dump(ref, f)


if __name__ == "__main__":
    main()
