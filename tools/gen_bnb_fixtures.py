#!/usr/bin/env python3
"""Writes tiny bitsandbytes checkpoints, saved by transformers, and their reference logits.

Each checkpoint is a random-initialised tiny model (the configs and tokenizer of
tools/gen_hf_fixtures.py: hidden 64, vocab 512, 2 layers) loaded by transformers with a
BitsAndBytesConfig on the CPU (bitsandbytes' CPU backend quantizes it) and written by
transformers' own save_pretrained: NF4, NF4 + double quantization, FP4 (4-bit, packed
uint8 + absmax / quant_map / nested_* / quant_state.bitsandbytes__*), and LLM.int8()
(int8 weight + SCB + weight_format); and a QLoRA adapter saved by peft on the NF4 base.

Reference logits (last position, fixed prompts), per checkpoint, both from the SAVED folder:
  "logits"      transformers loads the saved checkpoint (bitsandbytes layers), then
                model.dequantize() — bitsandbytes' own dequantize_4bit /
                int8_vectorwise_dequant — turns every layer back into a float32 nn.Linear,
                and transformers runs that float32 model (eager attention). This is what
                modelprint computes (dequantize to float32, run in float32).
  "bnb_logits"  the same saved checkpoint run by transformers + bitsandbytes as loaded (its
                CPU matmuls: for 4-bit a dequantize + matmul in the compute dtype; for
                LLM.int8() the activations are quantized to int8 too, so these differ more);
                null where equal to "logits" (4-bit with float32 compute).
The generator also checks that bitsandbytes' dequantize_4bit equals quant_map[q] · absmax
(with the nested absmax dequantized first) bit for bit, the formula modelprint uses.

    python -m venv /tmp/bnb-venv && /tmp/bnb-venv/bin/pip install torch transformers bitsandbytes safetensors accelerate tokenizers peft
    /tmp/bnb-venv/bin/python tools/gen_bnb_fixtures.py test/fixtures/bnb
    /tmp/bnb-venv/bin/python tools/gen_bnb_fixtures.py /tmp/bnb-all --all-archs   # every architecture (not committed)
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_hf_fixtures import ARCHS, PROMPTS, SEED, make_model, train_tokenizer  # noqa: E402

import bitsandbytes as bnb  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402
from transformers import AutoModelForCausalLM, BitsAndBytesConfig  # noqa: E402

VARIANTS = {
    "nf4": dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32),
    "nf4-dq": dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.float32),
    "fp4": dict(load_in_4bit=True, bnb_4bit_quant_type="fp4", bnb_4bit_compute_dtype=torch.float32),
    "int8": dict(load_in_8bit=True),
    # The common Hub case: a bfloat16 model, bfloat16 compute; the quant_state dtype is bfloat16.
    "nf4-bf16": dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16),
    # …and a float16 one (quant_state dtype float16).
    "fp4-f16": dict(load_in_4bit=True, bnb_4bit_quant_type="fp4", bnb_4bit_compute_dtype=torch.float16),
}
DTYPE = {"nf4-bf16": torch.bfloat16, "fp4-f16": torch.float16}
# (arch, variant) pairs written; the llama head is untied (lm_head stays float, as transformers keeps it).
# qwen2 (tied head) carries most variants: its checkpoints are the smaller ones.
WRITE = [("llama", "nf4"), ("llama", "int8"), ("qwen2", "nf4-dq"), ("qwen2", "int8"), ("qwen2", "nf4-bf16"), ("qwen2", "fp4-f16"),
         # GPT-2: transformers quantizes its Conv1D layers as Linear ones ([out, in], the transpose of Conv1D's weight).
         ("gpt2", "nf4")]


def logits_of(model, prompt_ids):
    # 8 significant digits: exact to float32's precision, half the JSON of a double's repr.
    with torch.no_grad():
        return [[float(f"{float(x):.8g}") for x in model(input_ids=torch.tensor([ids])).logits[0, -1]] for ids in prompt_ids]


def check_formula(d):
    """dequantize_4bit of every 4-bit weight in the saved file == quant_map[q] * absmax (float32, then the state's dtype), exactly."""
    checked = 0
    with safe_open(os.path.join(d, "model.safetensors"), "pt") as f:
        keys = set(f.keys())
        for k in sorted(keys):
            qs = [x for x in keys if x.startswith(k + ".quant_state.bitsandbytes__")]
            if not qs:
                continue
            st = json.loads(bytes(f.get_tensor(qs[0]).tolist()).decode())
            packed = f.get_tensor(k).reshape(-1)
            absmax = f.get_tensor(k + ".absmax")
            qmap = f.get_tensor(k + ".quant_map")
            if "nested_blocksize" in st:
                nmap = f.get_tensor(k + ".nested_quant_map")
                nabs = f.get_tensor(k + ".nested_absmax")
                idx = torch.arange(absmax.numel()) // st["nested_blocksize"]
                absmax = nmap[absmax.long()] * nabs[idx] + torch.tensor(st["nested_offset"], dtype=torch.float32)
            q = torch.stack([packed >> 4, packed & 15], dim=1).reshape(-1).long()
            n = 1
            for s in st["shape"]:
                n *= s
            # float32 products, then rounded to the quant_state's dtype (bfloat16 / float16) as the output.
            mine = (qmap[q[:n]] * absmax[torch.arange(n) // st["blocksize"]]).reshape(st["shape"]).to(getattr(torch, st["dtype"])).float()
            state = bnb.functional.QuantState.from_dict(
                {kk[len(k) + 1:]: f.get_tensor(kk) for kk in keys if kk.startswith(k + ".")}, device=torch.device("cpu"))
            lib = bnb.functional.dequantize_4bit(f.get_tensor(k), state).float()
            if not torch.equal(mine, lib):
                raise SystemExit(f"{d}: {k}: quant_map[q]·absmax differs from dequantize_4bit by {(mine - lib).abs().max()}")
            checked += 1
    return checked


QLORA_BASE = "qwen2-nf4-dq"


def save_qlora(out, base_name, prompt_ids, ref):
    """A QLoRA adapter: peft LoRA trained-like (random, init_lora_weights=False) on the saved 4-bit base, saved by peft."""
    from peft import LoraConfig, get_peft_model
    base = AutoModelForCausalLM.from_pretrained(os.path.join(out, base_name), device_map="cpu", attn_implementation="eager")
    torch.manual_seed(SEED + 3)
    pm = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, lora_dropout=0.0,
                                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    pm.eval()
    name = f"{base_name}-qlora"
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    pm.save_pretrained(d)
    for f in ("README.md",):
        if os.path.exists(os.path.join(d, f)):
            os.remove(os.path.join(d, f))
    with open(os.path.join(d, "adapter_config.json")) as f:
        ac = json.load(f)
    ac["base_model_name_or_path"] = "../" + base_name
    ac["target_modules"] = sorted(ac["target_modules"])  # peft writes a set: fix the order
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump(ac, f, indent=2)
    # peft's forward on the bitsandbytes base (4-bit, float32 compute: the dequantized base's, bit for bit).
    logits = logits_of(pm, prompt_ids)
    ref["models"][name] = {"quant": "nf4-dq", "arch": "qwen2", "adapter": True, "logits": logits, "bnb_logits": None}
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"{name}: {size} bytes (peft LoRA on the 4-bit base)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--all-archs", action="store_true",
                    help="every architecture of gen_hf_fixtures.py in NF4 + double quant, phi3 and gemma2 in LLM.int8() (a check, not committed)")
    args = ap.parse_args()
    global WRITE
    if args.all_archs:
        WRITE = [(a, "nf4-dq") for a in ARCHS] + [("phi3", "int8"), ("gemma2", "int8")]
    import argparse as _a, json as _j
    corpus = [_a.__file__, _j.__file__]
    out = args.out
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="bnb-gen-")
    tok_dir = os.path.join(tmp, "_tokenizer")
    fast = train_tokenizer(tok_dir, corpus)
    prompt_ids = [fast(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    ref = {"transformers": transformers.__version__, "torch": torch.__version__, "bitsandbytes": bnb.__version__,
           "prompts": PROMPTS, "prompt_ids": prompt_ids, "models": {}}
    for arch in sorted({a for a, _ in WRITE}):
        mt, ov = ARCHS[arch]
        model = make_model(mt, ov)
        full = os.path.join(tmp, arch)
        model.save_pretrained(full)
        # The float model's logits, first prompt only (to check it is test/fixtures/hf's).
        ref["models"][arch] = {"quant": None, "logits": logits_of(model, prompt_ids[:1])}
        for a, variant in WRITE:
            if a != arch:
                continue
            name = f"{arch}-{variant}"
            d = os.path.join(out, name)
            shutil.rmtree(d, ignore_errors=True)
            torch.manual_seed(SEED)
            qm = AutoModelForCausalLM.from_pretrained(full, quantization_config=BitsAndBytesConfig(**VARIANTS[variant]),
                                                      device_map="cpu", torch_dtype=DTYPE.get(variant, torch.float32), attn_implementation="eager")
            qm.save_pretrained(d)
            for f in os.listdir(tok_dir):
                shutil.copy(os.path.join(tok_dir, f), d)
            if os.path.exists(os.path.join(d, "generation_config.json")):
                os.remove(os.path.join(d, "generation_config.json"))
            # Both references from the saved folder.
            saved = AutoModelForCausalLM.from_pretrained(d, device_map="cpu", attn_implementation="eager")
            saved.eval()
            bnb_logits = logits_of(saved, prompt_ids)
            saved.dequantize()
            # Upcast the dequantized (and unquantized) weights to float32, as modelprint computes.
            saved.to(torch.float32)
            deq_logits = logits_of(saved, prompt_ids)
            checked = check_formula(d) if variant != "int8" else 0
            # bnb_logits only where they differ from logits (4-bit with float32 compute: identical).
            ref["models"][name] = {"quant": variant, "arch": arch, "logits": deq_logits,
                                   "bnb_logits": None if bnb_logits == deq_logits else bnb_logits}
            dev = max(abs(x - y) for p, q in zip(deq_logits, bnb_logits) for x, y in zip(p, q))
            rng = max(max(p) - min(p) for p in deq_logits)
            size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
            print(f"{name}: {size} bytes; |dequantized - bnb forward| max {dev:.3g} (range {rng:.3g}); "
                  f"{checked} 4-bit weights match quant_map·absmax exactly", file=sys.stderr)
            if name == QLORA_BASE:
                save_qlora(out, name, prompt_ids, ref)
    shutil.rmtree(tmp)
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main()
