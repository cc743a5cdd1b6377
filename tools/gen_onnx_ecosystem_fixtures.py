#!/usr/bin/env python3
"""Writes test/fixtures/onnx-ecosystem/: ONNX exports laid out as the ecosystem publishes them.

Made by the real tools (pip install "transformers==4.56.2" onnx onnxruntime onnx_ir;
torch is not needed). transformers 4.56 is pinned because it is a version whose
MistralConfig keeps head_dim=None (5.x derives it before saving, 4.51 and older too):

* config.json files written by transformers' own ``save_pretrained``
  (``MistralConfig(head_dim=None)`` -> ``"head_dim": null``,
  ``GPTNeoConfig(intermediate_size=None)`` -> ``"intermediate_size": null``);
* a float16 graph made by onnxruntime's ``onnxruntime.transformers.float16.convert_float_to_float16``
  with ``keep_io_types=False`` (fp16 inputs, KV cache and logits, as Optimum's fp16 exports;
  onnxconverter-common 1.16's converter leaves this graph's Cast nodes at float32, which
  onnxruntime rejects);
* transformers.js ``onnx/`` variants: ``model_quantized.onnx`` / ``model_int8.onnx`` /
  ``model_uint8.onnx`` (``onnxruntime.quantization.quantize_dynamic``), ``model_q4.onnx``
  (MatMulNBits, onnxruntime's ``MatMulNBitsQuantizer``), ``model_bnb4.onnx`` (MatMulBnb4,
  ``MatMulBnb4Quantizer``) and ``decoder_model_merged_*.onnx`` file names.

The graph itself is a tiny zoo model (``modelprint zoo create DIR --size tiny``,
alpha-base, seed 42): a Llama-style decoder with a KV cache. Its fp32 ``model.onnx``
and ``tokenizer.json`` are NOT committed (they are 1.2 MB); tests rebuild the same zoo
(deterministic) and check its sha256 against manifest.json.

Usage: python tools/gen_onnx_ecosystem_fixtures.py [--out test/fixtures/onnx-ecosystem]
       (run from the repository root, after ``npm run build``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import onnx
import onnxruntime
import transformers
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.float16 import convert_float_to_float16
from transformers import GPTNeoConfig, MistralConfig

ROOT = Path(__file__).resolve().parent.parent
ZOO_MODEL = "alpha-base"


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def build_zoo(tmp: Path) -> Path:
    zoo = tmp / "zoo"
    subprocess.run(
        ["node", str(ROOT / "bin" / "run.js"), "zoo", "create", str(zoo), "--size", "tiny", "--seed", "42", "--quiet"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return zoo / ZOO_MODEL


def save_config(cfg: transformers.PretrainedConfig, dest: Path, expect_null: str) -> None:
    """save_pretrained writes config.json; the field must really be null in it."""
    dest.mkdir(parents=True, exist_ok=True)
    cfg.save_pretrained(str(dest))
    written = json.loads((dest / "config.json").read_text())
    if expect_null and written.get(expect_null, "absent") is not None:
        sys.exit(f"{type(cfg).__name__}.save_pretrained wrote {expect_null}={written.get(expect_null, 'absent')!r}, expected null")


def copy_tokenizer_side_files(src: Path, dest: Path) -> None:
    # tokenizer.json is rebuilt by the tests (from the zoo); the small files travel.
    for name in ["tokenizer_config.json", "special_tokens_map.json", "generation_config.json"]:
        if (src / name).exists():
            shutil.copy(src / name, dest / name)


def fp16(src: Path, dest: Path) -> None:
    m = onnx.load(str(src))
    m16 = convert_float_to_float16(m, keep_io_types=False)
    onnx.save(m16, str(dest))


def q8(src: Path, dest: Path, weight_type: QuantType) -> None:
    quantize_dynamic(str(src), str(dest), weight_type=weight_type)


def q4(src: Path, dest: Path) -> None:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    # MatMul weights only (the transformers.js q4 recipe). Quantizing the Gather as well would
    # force opset 21 / IR 10 onto this opset-17 graph, which onnxruntime then rejects.
    q = MatMulNBitsQuantizer(onnx.load(str(src)), block_size=32, is_symmetric=True)
    q.process()
    q.model.save_model_to_file(str(dest), use_external_data_format=False)


def bnb4(src: Path, dest: Path) -> None:
    from onnxruntime.quantization.matmul_bnb4_quantizer import MatMulBnb4Quantizer

    q = MatMulBnb4Quantizer(onnx.load(str(src)), quant_type=MatMulBnb4Quantizer.NF4, block_size=32)
    q.process()
    q.model.save_model_to_file(str(dest), use_external_data_format=False)


def bf16_io(dest: Path, vocab: int) -> None:
    """A graph whose logits are bfloat16 (onnxruntime runs it; onnxruntime-node has no bfloat16
    tensors). Its output does not depend on weights: it only has to be a valid bf16-IO decoder."""
    from onnx import TensorProto as T
    from onnx import helper

    nodes = [
        helper.make_node("Cast", ["input_ids"], ["f"], to=T.FLOAT),
        helper.make_node("Unsqueeze", ["f", "ax"], ["u"]),
        helper.make_node("Shape", ["input_ids"], ["sh"]),
        helper.make_node("Concat", ["sh", "v"], ["tshape"], axis=0),
        helper.make_node("Expand", ["u", "tshape"], ["e"]),
        helper.make_node("Cast", ["e"], ["logits"], to=T.BFLOAT16),
    ]
    g = helper.make_graph(
        nodes,
        "bf16_io",
        [
            helper.make_tensor_value_info("input_ids", T.INT64, ["batch_size", "sequence_length"]),
            helper.make_tensor_value_info("attention_mask", T.INT64, ["batch_size", "total_sequence_length"]),
        ],
        [helper.make_tensor_value_info("logits", T.BFLOAT16, ["batch_size", "sequence_length", vocab])],
        [helper.make_tensor("ax", T.INT64, [1], [2]), helper.make_tensor("v", T.INT64, [1], [vocab])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(dest))


def runs(path: Path) -> bool:
    try:
        onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return True
    except Exception as e:  # noqa: BLE001 - we report why a variant was left out
        print(f"  {path.name}: onnxruntime cannot load it ({str(e).splitlines()[0][:160]})", file=sys.stderr)
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "test" / "fixtures" / "onnx-ecosystem"))
    out = Path(ap.parse_args().out)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        src = build_zoo(tmp)
        zcfg = json.loads((src / "config.json").read_text())
        fp32 = src / "onnx" / "model.onnx"
        # Start clean, keeping the hand-written README.md.
        if out.exists():
            for p in out.iterdir():
                if p.name != "README.md":
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
        out.mkdir(parents=True, exist_ok=True)
        dims = dict(
            vocab_size=zcfg["vocab_size"],
            hidden_size=zcfg["hidden_size"],
            max_position_embeddings=zcfg["max_position_embeddings"],
            bos_token_id=zcfg["bos_token_id"],
            eos_token_id=zcfg["eos_token_id"],
            pad_token_id=zcfg["pad_token_id"],
            tie_word_embeddings=zcfg["tie_word_embeddings"],
        )
        mistral = lambda: MistralConfig(  # noqa: E731
            **dims,
            intermediate_size=zcfg["intermediate_size"],
            num_hidden_layers=zcfg["num_hidden_layers"],
            num_attention_heads=zcfg["num_attention_heads"],
            num_key_value_heads=zcfg["num_key_value_heads"],
            head_dim=None,
            rms_norm_eps=zcfg["rms_norm_eps"],
            architectures=["MistralForCausalLM"],
        )

        # 1. Mistral config with head_dim: null; the fp32 graph (added by the test) as onnx/model.onnx.
        d = out / "mistral-null-head-dim"
        save_config(mistral(), d, "head_dim")
        copy_tokenizer_side_files(src, d)

        # 2. GPT-Neo config with intermediate_size: null; only onnx/model_quantized.onnx (the
        #    transformers.js q8 file; a folder holding only it used to be unsupported_format).
        d = out / "gpt-neo-null-intermediate"
        save_config(
            GPTNeoConfig(
                **dims,
                num_layers=zcfg["num_hidden_layers"],
                num_heads=zcfg["num_attention_heads"],
                attention_types=[[["global"], zcfg["num_hidden_layers"]]],
                intermediate_size=None,
                architectures=["GPTNeoForCausalLM"],
            ),
            d,
            "intermediate_size",
        )
        copy_tokenizer_side_files(src, d)
        (d / "onnx").mkdir()
        q8(fp32, d / "onnx" / "model_quantized.onnx", QuantType.QUInt8)

        # 3. fp16 with fp16 inputs/outputs (keep_io_types=False), saved as Optimum does: model.onnx.
        d = out / "fp16"
        save_config(mistral(), d, "head_dim")
        copy_tokenizer_side_files(src, d)
        (d / "onnx").mkdir()
        fp16(fp32, d / "onnx" / "model.onnx")

        # 4. A transformers.js onnx/ folder (model.onnx and model_fp16.onnx are copied in by the
        #    tests from the zoo and from fp16/, to keep the fixtures small).
        d = out / "variants"
        save_config(mistral(), d, "head_dim")
        copy_tokenizer_side_files(src, d)
        v = d / "onnx"
        v.mkdir()
        q8(fp32, v / "model_int8.onnx", QuantType.QInt8)
        q4(fp32, v / "model_q4.onnx")
        bnb4(fp32, v / "model_bnb4.onnx")
        shutil.copy(out / "gpt-neo-null-intermediate" / "onnx" / "model_quantized.onnx", v / "decoder_model_merged_quantized.onnx")
        for f in sorted(v.iterdir()):
            if not runs(f):
                f.unlink()

        # 5. bfloat16 logits: a coded error (unexpected_io) from inspect and lineage alike.
        d = out / "bf16-io"
        save_config(mistral(), d, "head_dim")
        copy_tokenizer_side_files(src, d)
        (d / "onnx").mkdir()
        bf16_io(d / "onnx" / "model.onnx", zcfg["vocab_size"])
        if not runs(d / "onnx" / "model.onnx"):
            sys.exit("onnxruntime cannot load the bf16-io graph")

        manifest = {
            "made_by": "tools/gen_onnx_ecosystem_fixtures.py",
            "zoo": {"size": "tiny", "seed": 42, "model": ZOO_MODEL},
            "zoo_sha256": {
                "onnx/model.onnx": sha256(fp32),
                "tokenizer.json": sha256(src / "tokenizer.json"),
            },
            "versions": {
                "transformers": transformers.__version__,
                "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__,
            },
            "files": {str(p.relative_to(out)): sha256(p) for p in sorted(out.rglob("*")) if p.is_file() and p.name != "README.md"},
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        print(f"wrote {out} ({total / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main()
