#!/usr/bin/env python3
"""Writes tiny transformers checkpoints (safetensors) and their reference logits.

Every checkpoint is random-initialised and saved by transformers' own save_pretrained, with
a byte-level BPE tokenizer trained here by `tokenizers`; the reference logits are the
last-position logits of fixed prompts computed by transformers (PyTorch, fp32, eager
attention). The tests (test/safetensors.test.ts) compare modelprint against them without
Python.

    pip install torch transformers safetensors tokenizers
    python tools/gen_hf_fixtures.py test/fixtures/hf            # the committed fixtures
    python tools/gen_hf_fixtures.py /tmp/qwen05 --bench          # Qwen2.5-0.5B-shaped, bf16 (not committed)

Weights are drawn so that every parameter matters (norm weights and biases are random
too, not 1 and 0), and the configs turn the quirks on at this size: a llama3 RoPE scaling
whose bands fall inside head_dim, sliding windows shorter than the prompts, strong
soft-capping, partial rotary, GQA, head_dim × heads != hidden for the Gemmas.
"""
import argparse
import json
import os
import shutil
import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

SEED = 1234
VOCAB = 512
PROMPTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Fingerprints of language models",
    "def main():\n    return 42",
    "In 1492, a ship sailed west across the ocean, and the crew",
]

COMMON = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              intermediate_size=96, max_position_embeddings=128, bos_token_id=1, eos_token_id=2, pad_token_id=0)

# name -> (model_type, config overrides)
ARCHS = {
    "llama": ("llama", dict(tie_word_embeddings=False, rope_theta=10000.0,
                            rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                              original_max_position_embeddings=64))),
    "qwen2": ("qwen2", dict(tie_word_embeddings=True, rope_theta=1000000.0)),
    "mistral": ("mistral", dict(tie_word_embeddings=False, sliding_window=4)),
    "qwen3": ("qwen3", dict(tie_word_embeddings=True, head_dim=16)),
    "gemma": ("gemma", dict(head_dim=32, num_key_value_heads=1, hidden_activation="gelu_pytorch_tanh")),
    "gemma2": ("gemma2", dict(head_dim=32, sliding_window=4, attn_logit_softcapping=2.0, final_logit_softcapping=5.0,
                              query_pre_attn_scalar=24, hidden_activation="gelu_pytorch_tanh")),
    "gemma3_text": ("gemma3_text", dict(head_dim=32, sliding_window=4, sliding_window_pattern=2, query_pre_attn_scalar=24,
                                        rope_theta=1000000.0, rope_local_base_freq=10000.0, final_logit_softcapping=5.0,
                                        attn_logit_softcapping=3.0)),
    "phi3": ("phi3", dict(tie_word_embeddings=False, partial_rotary_factor=0.5, num_key_value_heads=2)),
    "gpt2": ("gpt2", dict(n_embd=64, n_layer=2, n_head=4, n_positions=128, n_inner=96, activation_function="gelu_new")),
    "gpt_neox": ("gpt_neox", dict(rotary_pct=0.25, use_parallel_residual=True, hidden_act="gelu", tie_word_embeddings=False)),
}
GPT2_DROP = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size", "max_position_embeddings")


def train_tokenizer(out_dir, corpus_files):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train(corpus_files, trainer)
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.save_pretrained(out_dir)
    return fast


def randomize(model, gemma_norm):
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name or name.endswith("ln_f.weight") or "layernorm" in name:
                if name.endswith(".bias"):
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_((0.0 if gemma_norm else 1.0) + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "embed" in name or "wte" in name or "wpe" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[0] if ("c_attn" in name or "c_proj" in name or "c_fc" in name) else p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def make_model(model_type, overrides):
    kw = dict(COMMON)
    if model_type == "gpt2":
        for k in GPT2_DROP:
            kw.pop(k, None)
    if model_type == "gpt_neox":
        kw.pop("num_key_value_heads")
    kw.update(overrides)
    cfg = AutoConfig.for_model(model_type, **kw)
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", torch_dtype=torch.float32)
    randomize(model, model_type.startswith("gemma"))
    model.eval()
    return model


def reference(dir_, prompt_ids):
    model = AutoModelForCausalLM.from_pretrained(dir_, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    out = []
    with torch.no_grad():
        for ids in prompt_ids:
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            out.append([float(x) for x in logits])
    return out


def write_fixtures(out, corpus_files):
    os.makedirs(out, exist_ok=True)
    tok_dir = os.path.join(out, "_tokenizer")
    fast = train_tokenizer(tok_dir, corpus_files)
    prompt_ids = [fast(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    ref = {"transformers": __import__("transformers").__version__, "torch": torch.__version__, "prompts": PROMPTS,
           "prompt_ids": prompt_ids, "models": {}}

    def save(name, model, dtype, **kw):
        d = os.path.join(out, name)
        shutil.rmtree(d, ignore_errors=True)
        model.to(dtype).save_pretrained(d, **kw)
        model.to(torch.float32)
        for f in os.listdir(tok_dir):
            shutil.copy(os.path.join(tok_dir, f), d)
        if os.path.exists(os.path.join(d, "generation_config.json")):
            os.remove(os.path.join(d, "generation_config.json"))
        ref["models"][name] = {"dtype": str(dtype).replace("torch.", ""), "logits": reference(d, prompt_ids)}
        print(f"{name}: {sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))} bytes", file=sys.stderr)

    def save_lora(name, base_name, lora_kw):
        """A PEFT LoRA adapter saved by peft, its base named by a relative path."""
        from peft import LoraConfig, get_peft_model
        base = AutoModelForCausalLM.from_pretrained(os.path.join(out, base_name), torch_dtype=torch.float32, attn_implementation="eager")
        torch.manual_seed(SEED + 2)
        pm = get_peft_model(base, LoraConfig(init_lora_weights=False, lora_dropout=0.0, **lora_kw))
        with torch.no_grad():
            for n, p in pm.named_parameters():
                if "modules_to_save" in n:
                    p.add_(0.1 * torch.randn_like(p))
        pm.eval()
        d = os.path.join(out, name)
        shutil.rmtree(d, ignore_errors=True)
        pm.save_pretrained(d)
        with open(os.path.join(d, "adapter_config.json")) as f:
            ac = json.load(f)
        ac["base_model_name_or_path"] = "../" + base_name
        with open(os.path.join(d, "adapter_config.json"), "w") as f:
            json.dump(ac, f, indent=2)
        with torch.no_grad():
            logits = [[float(x) for x in pm(input_ids=torch.tensor([ids])).logits[0, -1]] for ids in prompt_ids]
        ref["models"][name] = {"dtype": "float32", "adapter": True, "logits": logits}
        print(f"{name}: {sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))} bytes", file=sys.stderr)

    for name, (mt, ov) in ARCHS.items():
        model = make_model(mt, ov)
        save(name, model, torch.float32)
        if name == "llama":
            save("llama-f16", model, torch.float16)
            save("llama-bf16", model, torch.bfloat16)
            # A fine-tune-like derivative: the same weights plus small noise.
            g = torch.Generator().manual_seed(SEED + 1)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.02 * p.abs().mean() * torch.randn(p.shape, generator=g))
            save("llama-derived", model, torch.float32)
        if name == "qwen2":
            save("qwen2-sharded", model, torch.float32, max_shard_size="200KB")
        if name == "llama":
            save_lora("llama-lora", "llama", dict(r=4, lora_alpha=8, use_rslora=True, modules_to_save=["lm_head"],
                                                  target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
        if name == "gpt2":
            save_lora("gpt2-lora", "gpt2", dict(r=4, lora_alpha=16, fan_in_fan_out=True, target_modules=["c_attn", "c_proj", "c_fc"]))
    shutil.rmtree(tok_dir)
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)


def write_bench(out, corpus_files, derived):
    """Qwen2.5-0.5B's config, random init, bf16: a base and `derived` perturbed copies."""
    os.makedirs(out, exist_ok=True)
    tok_dir = os.path.join(out, "_tokenizer")
    # A word-level tokenizer as wide as Qwen2.5's vocabulary, so bottom-k runs over 151,936 logits.
    # (Metaspace: decoding puts the spaces back, so decode → encode round-trips.)
    words = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for i in range(4, 151936):
        words[f"\u2581w{i:x}"] = i
    tok = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>").save_pretrained(tok_dir)
    cfg = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
               num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
               tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model("qwen2", **cfg), torch_dtype=torch.bfloat16)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    for i in range(derived + 1):
        name = "base" if i == 0 else f"derived-{i}"
        if i > 0:
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.002 * torch.randn_like(p))
        d = os.path.join(out, name)
        model.save_pretrained(d)
        for f in os.listdir(tok_dir):
            shutil.copy(os.path.join(tok_dir, f), d)
        print(f"wrote {d}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--bench", action="store_true", help="write the Qwen2.5-0.5B-shaped bf16 benchmark checkpoints")
    ap.add_argument("--derived", type=int, default=3)
    args = ap.parse_args()
    # A corpus that does not change with the project: the source of two stdlib modules.
    import argparse as _a, json as _j
    corpus = [_a.__file__, _j.__file__]
    if args.bench:
        write_bench(args.out, corpus, args.derived)
    else:
        write_fixtures(args.out, corpus)


if __name__ == "__main__":
    main()
