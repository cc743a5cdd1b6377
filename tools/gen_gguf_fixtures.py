#!/usr/bin/env python3
"""Writes GGUF fixtures (test/fixtures/gguf) with llama.cpp's own tools, and their references.

- The tiny transformers checkpoints of test/fixtures/hf (llama, qwen2, mistral, gemma:
  hidden 64) are converted by llama.cpp's convert_hf_to_gguf.py (F32, F16, Q8_0) and
  quantized by llama.cpp itself (llama_cpp.llama_model_quantize: Q4_0, Q4_K_M, Q5_K_M, Q6_K;
  the type lists per architecture are in ARCHS). At hidden 64 llama.cpp falls back from the
  K-quants (rows must be multiples of 256) to Q5_0 / Q5_1 / Q8_0, so a wider checkpoint per
  architecture (<arch>-wide: hidden 256, made here like gen_hf_fixtures.py does) carries real
  Q4_K / Q5_K / Q6_K tensors, and llama-spm has a SentencePiece tokenizer.model.
- reference.json: for each GGUF file the prompts' token ids as llama.cpp tokenizes them and
  the last-position logits llama.cpp computes (llama-cpp-python, CPU, F32 KV cache) on the
  file and on a copy dequantized to F32 by gguf-py.
- dequant.gguf / dequant.json: one tensor per ggml type modelprint dequantizes, made of
  random blocks (finite scales), with the values gguf-py's numpy dequantizer
  (gguf.quants.dequantize, a port of ggml-quants.c) gives for them.

convert_hf_to_gguf.py is not on PyPI; it is in the llama.cpp source that llama-cpp-python's
sdist vendors (vendor/llama.cpp). The tokenizer the checkpoints share is a byte-level BPE
with GPT-2's pre-tokenizer regex that llama.cpp's hash table does not know, so the
converter is told it is "gpt-2" (its set_vocab goes straight to _set_vocab_gpt2).

    python -m venv /tmp/ggufvenv && /tmp/ggufvenv/bin/pip install gguf llama-cpp-python torch transformers sentencepiece
    LLAMA_CPP_DIR=/path/to/llama.cpp /tmp/ggufvenv/bin/python tools/gen_gguf_fixtures.py test/fixtures/gguf
"""
import argparse
import base64
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HF = os.path.join(ROOT, "test", "fixtures", "hf")
# Every architecture of the issue (llama, qwen2, mistral, gemma) in every type it names, and
# qwen3 in all but F32 (its F16 file is the full-precision check); mistral converts to GGUF
# architecture "llama" (no sliding window in llama.cpp's graph). Committed total about 10 MB.
TYPES = ["F32", "F16", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"]
# llama also in BF16 and Q4_1 (the activation rounding to bf16 and Q8_1 blocks of those weights).
ARCHS = {"llama": TYPES + ["BF16", "Q4_1"], "qwen2": TYPES, "gemma": TYPES, "mistral": TYPES, "qwen3": TYPES[1:]}
_WIDE = dict(hidden_size=256, intermediate_size=256, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2)
# Rows of 256, so llama.cpp keeps its K-quants: Q4_K_M holds Q4_K and Q6_K tensors, Q5_K_M Q5_K and Q6_K.
WIDE = {"llama-wide": ("llama", dict(_WIDE, tie_word_embeddings=False)),
        "qwen2-wide": ("qwen2", dict(_WIDE, tie_word_embeddings=True)),
        "mistral-wide": ("mistral", dict(_WIDE, tie_word_embeddings=True, sliding_window=4)),
        "gemma-wide": ("gemma", dict(_WIDE, head_dim=64, num_key_value_heads=1, hidden_activation="gelu_pytorch_tanh"))}
WIDE_TYPES = {k: ["Q4_K_M", "Q5_K_M"] for k in WIDE}

# LLAMA_FTYPE values of llama.h
FTYPE = {"Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18}

CONVERT_WRAPPER = r'''
import os, sys
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[1] + "/gguf-py")
import convert_hf_to_gguf as conv
from conversion import base
if os.environ.get("GGUF_SPM"):  # a SentencePiece tokenizer.model: the converter's own path
    sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[2:]
    conv.main()
    sys.exit(0)
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
# transformers 5 picks the tokenizer class by model_type (Qwen2Tokenizer appends <|endoftext|> past
# the vocabulary); the checkpoints' tokenizer.json is a plain fast tokenizer.
import transformers
transformers.AutoTokenizer.from_pretrained = staticmethod(lambda *a, **k: transformers.PreTrainedTokenizerFast.from_pretrained(*a, **k))
def gpt2_vocab(self):
    self._set_vocab_gpt2()
from conversion import gemma, llama, qwen
for cls in (llama.LlamaModel, gemma.GemmaModel, qwen.Qwen2Model):
    cls.set_vocab = gpt2_vocab
sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[2:]
conv.main()
'''


def convert(llama_dir, src, outtype, out):
    wrapper = os.path.join("/tmp", "gguf_convert_wrapper.py")
    with open(wrapper, "w") as f:
        f.write(CONVERT_WRAPPER)
    env = dict(os.environ)
    if os.path.exists(os.path.join(src, "tokenizer.model")):
        env["GGUF_SPM"] = "1"
    subprocess.run([sys.executable, wrapper, llama_dir, src, "--outtype", outtype, "--outfile", out], check=True,
                   stdout=subprocess.DEVNULL, env=env)


def quantize(src, dst, qtype):
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPE[qtype]
    params.nthread = 1
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize {qtype} failed: {rc}")


def f32_copy(src, dst):
    """The same GGUF with every tensor dequantized to F32 by gguf-py (metadata copied as is)."""
    import gguf
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(dst, arch)
    for f in r.fields.values():
        if f.name.startswith("GGUF.") or f.name == "general.architecture":
            continue
        val = f.contents()
        if f.name == "general.file_type":
            val = 0
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(f.name, val, f.types[0], sub_type=sub)
    for t in r.tensors:
        y = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        w.add_tensor(t.name, y.reshape([int(d) for d in reversed(t.shape)]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def b64(rows):
    return [base64.b64encode(np.asarray(r, dtype=np.float32).tobytes()).decode() for r in rows]


def llama_cpp_logits(path, prompts):
    from llama_cpp import Llama
    # KV cache in F32 (llama.cpp's default is F16), no flash attention: the only rounding left is llama.cpp's own.
    llm = Llama(model_path=path, logits_all=True, n_ctx=128, n_threads=1, n_batch=128, verbose=False, seed=0,
                type_k=0, type_v=0, flash_attn=False)
    ids_out, logits_out = [], []
    for p in prompts:
        ids = llm.tokenize(p.encode("utf-8"), add_bos=False, special=False)
        llm.reset()
        llm.eval(ids)
        ids_out.append(list(ids))
        logits_out.append([float(x) for x in np.asarray(llm.scores[len(ids) - 1], dtype=np.float32)])
    del llm
    return ids_out, logits_out


def tensor_types(path):
    import gguf
    r = gguf.GGUFReader(path)
    out = {}
    for t in r.tensors:
        out[t.tensor_type.name] = out.get(t.tensor_type.name, 0) + 1
    return out


def make_wide(out_dir, model_type, overrides):
    sys.path.insert(0, HERE)
    import torch
    import gen_hf_fixtures as hf
    from transformers import AutoConfig, AutoModelForCausalLM
    kw = dict(hf.COMMON)
    kw.update(overrides)
    cfg = AutoConfig.for_model(model_type, **kw)
    torch.manual_seed(hf.SEED)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", torch_dtype=torch.float32)
    hf.randomize(model, model_type.startswith("gemma"))
    model.save_pretrained(out_dir)
    shutil.copy(os.path.join(HF, "llama", "tokenizer.json"), os.path.join(out_dir, "tokenizer.json"))
    tc = json.load(open(os.path.join(HF, "llama", "tokenizer_config.json")))
    tc["tokenizer_class"] = "PreTrainedTokenizerFast"
    json.dump(tc, open(os.path.join(out_dir, "tokenizer_config.json"), "w"))


def make_spm(out_dir):
    """llama with a SentencePiece BPE tokenizer.model (byte fallback) trained here by sentencepiece."""
    import argparse as _a
    import json as _j
    import sentencepiece as spm
    import torch
    sys.path.insert(0, HERE)
    import gen_hf_fixtures as hf
    os.makedirs(out_dir, exist_ok=True)
    text = "".join(open(f, encoding="utf-8").read() for f in (_a.__file__, _j.__file__))
    corpus = os.path.join(out_dir, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write(text)
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=os.path.join(out_dir, "tokenizer"), vocab_size=hf.VOCAB,
                                   model_type="bpe", byte_fallback=True, character_coverage=1.0, unk_id=0, bos_id=1,
                                   eos_id=2, pad_id=-1, num_threads=1, add_dummy_prefix=True, minloglevel=2)
    os.remove(corpus)
    os.remove(os.path.join(out_dir, "tokenizer.vocab"))
    model = hf.make_model("llama", dict(tie_word_embeddings=False, pad_token_id=None))
    model.save_pretrained(out_dir)


def dequant_fixture(out):
    """One tensor per type of random blocks with finite f16 scales; references from gguf-py."""
    import gguf
    from gguf.constants import GGML_QUANT_SIZES
    T = gguf.GGMLQuantizationType
    # byte offsets of the f16 scale fields in each block (ggml-common.h)
    scale_fields = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
                    "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}
    rng = np.random.default_rng(1234)
    w = gguf.GGUFWriter(os.path.join(out, "dequant.gguf"), "llama")
    ref = {"gguf": gguf.__version__ if hasattr(gguf, "__version__") else "", "tensors": {}}
    for name in ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"]:
        qt = T[name]
        block, nbytes = GGML_QUANT_SIZES[qt]
        rows, cols = 2, 512
        if name in ("F32", "F16", "BF16"):
            x = rng.standard_normal((rows, cols)).astype(np.float32)
            raw = gguf.quants.quantize(x, qt)
        else:
            raw = rng.integers(0, 256, size=(rows, cols // block * nbytes), dtype=np.uint8)
            blocks = raw.reshape(rows, -1, nbytes)
            for off in scale_fields[name]:
                s = rng.uniform(-0.05, 0.05, size=blocks.shape[:2]).astype(np.float16)
                blocks[:, :, off:off + 2] = s.view(np.uint8).reshape(rows, -1, 2)
            raw = blocks.reshape(rows, -1)
        y = gguf.quants.dequantize(raw, qt).astype(np.float32)
        assert y.shape == (rows, cols) and np.isfinite(y).all(), name
        w.add_tensor(f"t.{name}", raw, raw_dtype=qt)
        ref["tensors"][f"t.{name}"] = {"type": name, "shape": [rows, cols],
                                       "values_f32_b64": base64.b64encode(y.tobytes()).decode()}
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(os.path.join(out, "dequant.json"), "w") as f:
        json.dump(ref, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--llama-cpp-dir", default=os.environ.get("LLAMA_CPP_DIR"))
    ap.add_argument("--only", nargs="*", help="regenerate these sources only (keeps the other reference entries)")
    args = ap.parse_args()
    if not args.llama_cpp_dir or not os.path.exists(os.path.join(args.llama_cpp_dir, "convert_hf_to_gguf.py")):
        sys.exit("set LLAMA_CPP_DIR to a llama.cpp source tree (convert_hf_to_gguf.py, gguf-py)")
    import llama_cpp
    out = args.out
    os.makedirs(out, exist_ok=True)
    work = "/tmp/gguf-fixture-work"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    hf_ref = json.load(open(os.path.join(HF, "reference.json")))
    prompts = hf_ref["prompts"]
    ref = {"llama_cpp_python": llama_cpp.__version__, "prompts": prompts, "hf_prompt_ids": hf_ref["prompt_ids"], "files": {}}
    if args.only:
        ref["files"] = json.load(open(os.path.join(out, "reference.json")))["files"]

    jobs = []
    for a, types in ARCHS.items():
        # transformers 5 maps model_type qwen2 to Qwen2Tokenizer, which appends <|endoftext|> past the
        # vocabulary; the checkpoints' tokenizer.json is a plain PreTrainedTokenizerFast one.
        d = os.path.join(work, a)
        shutil.copytree(os.path.join(HF, a), d)
        tc = json.load(open(os.path.join(d, "tokenizer_config.json")))
        tc["tokenizer_class"] = "PreTrainedTokenizerFast"
        json.dump(tc, open(os.path.join(d, "tokenizer_config.json"), "w"))
        jobs.append((a, d, types))
    spm_dir = os.path.join(work, "llama-spm")
    make_spm(spm_dir)
    jobs.append(("llama-spm", spm_dir, ["Q8_0"]))
    for name, (mt, ov) in WIDE.items():
        d = os.path.join(work, name)
        make_wide(d, mt, ov)
        jobs.append((name, d, WIDE_TYPES[name]))

    for name, src, types in jobs:
        if args.only and name not in args.only:
            continue
        f32 = os.path.join(work, f"{name}-F32.gguf")
        convert(args.llama_cpp_dir, src, "f32", f32)
        for t in types:
            dst = os.path.join(out, f"{name}-{t}.gguf")
            if t == "F32":
                shutil.copy(f32, dst)
            elif t in ("F16", "BF16"):
                convert(args.llama_cpp_dir, src, t.lower(), dst)
            elif t == "Q8_0":
                convert(args.llama_cpp_dir, src, "q8_0", dst)
            else:
                quantize(f32, dst, t)
            ids, logits = llama_cpp_logits(dst, prompts)
            deq = os.path.join(work, f"{name}-{t}-dequantized-F32.gguf")
            f32_copy(dst, deq)
            ids2, logits_f32 = llama_cpp_logits(deq, prompts)
            assert ids2 == ids
            ref["files"][os.path.basename(dst)] = {"arch": name.split("-")[0], "source": name, "type": t,
                                                   "tensor_types": tensor_types(dst), "prompt_ids": ids,
                                                   "logits_f32_b64": b64(logits), "dequantized_logits_f32_b64": b64(logits_f32)}
            print(f"{os.path.basename(dst)}: {os.path.getsize(dst)} bytes, {tensor_types(dst)}", flush=True)
    if not args.only:
        dequant_fixture(out)
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main()
