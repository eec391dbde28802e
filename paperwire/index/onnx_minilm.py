"""MiniLM for queries without torch: the packaged model exported once to ONNX and run with onnxruntime.

Importing torch and sentence-transformers takes about 8 s on 2 cores, which a command-line search would
pay on every run; onnxruntime and the tokenizer load in about 0.5 s and embed a query in a few ms. Bulk
embedding stays on torch, which is about twice as fast per abstract here. Both give the same vectors
(within 1e-5, tested; 3e-7 measured), so query and paper vectors never come from different models.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

ONNX_FILE = "model.onnx"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_onnx(transformer: Any, target: Path) -> None:
    """Write the transformer's graph (token ids -> last hidden states) to `target`/model.onnx."""
    import torch

    class HiddenStates(torch.nn.Module):  # the export passes inputs by position; the model wants names
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = torch.ones((2, 8), dtype=torch.int64)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "hidden")}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer notes about data-dependent branches the graph does not take
        torch.onnx.export(HiddenStates(transformer.eval()), (sample, sample, torch.zeros_like(sample)),
                          str(target / ONNX_FILE), input_names=list(_INPUTS), output_names=["hidden"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)


class OnnxMiniLM:
    """Mean-pooled MiniLM vectors (not normalised) from an exported graph; safe to call from many threads."""

    def __init__(self, graph: Path, tokenizer_file: Path, max_tokens: int) -> None:
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        # A query is a few small matrix products: more threads cost more in synchronisation than they save.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(graph / ONNX_FILE), options,
                                                    providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        feed = {name: np.array([getattr(e, attr) for e in encodings], dtype=np.int64)
                for name, attr in zip(_INPUTS, ("ids", "attention_mask", "type_ids"), strict=True)}
        hidden = self.session.run(None, feed)[0]
        mask = feed["attention_mask"][..., None].astype(np.float32)
        return (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
