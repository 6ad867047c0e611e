"""The PyTorch side of the reference: a BERT encoder with sentence-transformers' mean pooling
and L2 normalisation, weights read from model.safetensors, inputs from tokenizer.json.

Eager PyTorch, float32, post-LayerNorm BERT with exact (erf) GELU: the computation of
transformers' BertModel, with parameter names equal to the Hugging Face ones so that a
model.safetensors loads by name. Attention uses torch's scaled_dot_product_attention where
torch has it (2.0 on), the plain softmax(QK^T)V otherwise. It needs torch, numpy and
tokenizers, nothing else (no transformers, no safetensors package).
"""

import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from safetensors_dtype import read_safetensors


def linear(d_in, d_out):
    return nn.Linear(d_in, d_out)


class Bert(nn.Module):
    """BERT with Hugging Face parameter names (embeddings.*, encoder.layer.N.*)."""

    def __init__(self, cfg):
        super().__init__()
        h, eps = cfg["hidden_size"], cfg.get("layer_norm_eps", 1e-12)
        self.heads = cfg["num_attention_heads"]
        self.hidden_p = cfg.get("hidden_dropout_prob", 0.1)
        self.attn_p = cfg.get("attention_probs_dropout_prob", 0.1)
        if cfg.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"hidden_act {cfg.get('hidden_act')!r}: this reference implements gelu only")
        self.embeddings = nn.ModuleDict({
            "word_embeddings": nn.Embedding(cfg["vocab_size"], h),
            "position_embeddings": nn.Embedding(cfg["max_position_embeddings"], h),
            "token_type_embeddings": nn.Embedding(cfg.get("type_vocab_size", 2), h),
            "LayerNorm": nn.LayerNorm(h, eps=eps),
        })
        inter = cfg["intermediate_size"]
        self.encoder = nn.ModuleDict({"layer": nn.ModuleList([
            nn.ModuleDict({
                "attention": nn.ModuleDict({
                    "self": nn.ModuleDict({"query": linear(h, h), "key": linear(h, h), "value": linear(h, h)}),
                    "output": nn.ModuleDict({"dense": linear(h, h), "LayerNorm": nn.LayerNorm(h, eps=eps)}),
                }),
                "intermediate": nn.ModuleDict({"dense": linear(h, inter)}),
                "output": nn.ModuleDict({"dense": linear(inter, h), "LayerNorm": nn.LayerNorm(h, eps=eps)}),
            })
            for _ in range(cfg["num_hidden_layers"])
        ])})

    def attend(self, q, k, v, keep):
        """q, k, v: [b, heads, l, dh]; keep: [b, l] bool (real tokens)."""
        p = self.attn_p if self.training else 0.0
        if hasattr(F, "scaled_dot_product_attention"):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :], dropout_p=p)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
        return F.dropout(scores.softmax(-1), p, self.training) @ v

    def forward(self, ids, keep):
        b, l = ids.shape
        e = self.embeddings
        pos = torch.arange(l, device=ids.device)
        x = e["word_embeddings"](ids) + e["position_embeddings"](pos)[None] + e["token_type_embeddings"](torch.zeros_like(ids))
        x = F.dropout(e["LayerNorm"](x), self.hidden_p, self.training)
        for layer in self.encoder["layer"]:
            a = layer["attention"]
            split = lambda t: t.view(b, l, self.heads, -1).transpose(1, 2)
            q, k, v = (split(a["self"][n](x)) for n in ("query", "key", "value"))
            ctx = self.attend(q, k, v, keep).transpose(1, 2).reshape(b, l, -1)
            o = a["output"]
            x = o["LayerNorm"](x + F.dropout(o["dense"](ctx), self.hidden_p, self.training))
            f = layer["output"]
            y = f["dense"](F.gelu(layer["intermediate"]["dense"](x)))
            x = f["LayerNorm"](x + F.dropout(y, self.hidden_p, self.training))
        return x


def sentence_vectors(model, ids, keep):
    """Mean pooling over real tokens, then L2 normalisation (all-MiniLM-L6-v2's head)."""
    states = model(ids, keep)
    m = keep.unsqueeze(-1).to(states.dtype)
    pooled = (states * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return F.normalize(pooled, p=2, dim=-1)


def load_config(path):
    with open(path) as f:
        return json.load(f)


def load_model(model_dir, device, random_config=None, seed=42):
    """all-MiniLM-L6-v2-like folder weights, or random weights of `random_config`'s shape."""
    torch.manual_seed(seed)
    if random_config:
        return Bert(load_config(random_config)).to(device)
    model = Bert(load_config(os.path.join(model_dir, "config.json")))
    tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    state = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in tensors.items()}
    missing, _unused = model.load_state_dict(state, strict=False)
    if missing:
        raise ValueError(f"{model_dir}/model.safetensors lacks {len(missing)} tensors, e.g. {missing[:3]}")
    return model.to(device)


class Tokens:
    """tokenizer.json through the `tokenizers` package, padded per batch."""

    def __init__(self, model_dir, max_len):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.tok.no_padding()
        self.tok.enable_truncation(max_len)

    def batch(self, texts, device):
        # A named region, so that torch_kernels.py can leave out this host-side work (the rows
        # are filled on the CPU, then copied to the device once).
        with torch.profiler.record_function("tokenize"):
            return self._batch(texts, device)

    def _batch(self, texts, device):
        enc = self.tok.encode_batch(list(texts))
        width = max(len(e.ids) for e in enc)
        ids = torch.zeros(len(enc), width, dtype=torch.long)
        for i, e in enumerate(enc):
            ids[i, : len(e.ids)] = torch.tensor(e.ids, dtype=torch.long)
        lengths = torch.tensor([len(e.ids) for e in enc])
        keep = torch.arange(width)[None, :] < lengths[:, None]
        return ids.to(device, non_blocking=True), keep.to(device, non_blocking=True)


def max_seq_length(model_dir, default=256):
    p = os.path.join(model_dir, "sentence_bert_config.json")
    if os.path.exists(p):
        return load_config(p).get("max_seq_length", default)
    return default
