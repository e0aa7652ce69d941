"""ShareGPT request lengths (Llama-3 tokens) and the paper's heavy-tail inflation.

The shipped table ``workloads/data/sharegpt_llama3_lengths.csv`` holds one (prompt, decode)
pair per ShareGPT conversation: the first human turn and the first assistant answer,
counted with the Llama-3 tokenizer, each between 1 and 4,096 tokens, without any system
prompt.  ``scripts/build_sharegpt_lengths.py`` rebuilds it; its header records provenance.
"""
from __future__ import annotations

import gzip
import io
from functools import lru_cache
from importlib import resources

import numpy as np

TABLE_NAME = "sharegpt_llama3_lengths.csv"
SYSTEM_PROMPT_TOKENS = 42
MAX_TOKENS = 4096
INFLATE_PROB = 0.05
INFLATE_FACTOR = 10


def _read_table_text() -> str:
    data_dir = resources.files("workloads").joinpath("data")
    for name in (TABLE_NAME, TABLE_NAME + ".gz"):
        res = data_dir.joinpath(name)
        if res.is_file():
            raw = res.read_bytes()
            return (gzip.decompress(raw) if name.endswith(".gz") else raw).decode("utf-8")
    raise FileNotFoundError(f"the ShareGPT length table {TABLE_NAME}[.gz] is missing from "
                            f"workloads/data; rebuild it with scripts/build_sharegpt_lengths.py")


@lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    text = _read_table_text()
    header = tuple(line[1:].strip() for line in text.splitlines() if line.startswith("#"))
    body = "\n".join(line for line in text.splitlines() if line and not line.startswith("#"))
    columns, _, rows = body.partition("\n")
    if columns.strip() != "prompt_tokens,decode_tokens":
        raise ValueError(f"unexpected ShareGPT table header {columns!r}")
    table = np.loadtxt(io.StringIO(rows), delimiter=",", dtype=np.int64, ndmin=2)
    prompt, decode = np.ascontiguousarray(table[:, 0]), np.ascontiguousarray(table[:, 1])
    # The cached arrays are shared by every caller, so nobody may change them.
    prompt.setflags(write=False)
    decode.setflags(write=False)
    return prompt, decode, header


def load_sharegpt_lengths() -> tuple[np.ndarray, np.ndarray]:
    """The shipped table as read-only int64 arrays ``(prompt_tokens, decode_tokens)``.

    Raw Llama-3 token counts of the first human turn and first assistant turn of each
    conversation (no system prompt).  Read on first use and cached.
    """
    prompt, decode, _ = _load()
    return prompt, decode


def sharegpt_provenance() -> tuple[str, ...]:
    """The table's commented header lines: source, tokenizer, filtering rules, statistics."""
    return _load()[2]


def inflate_lengths(prompt: np.ndarray, decode: np.ndarray, rng: np.random.Generator, *,
                    prob: float = INFLATE_PROB, factor: int = INFLATE_FACTOR,
                    max_tokens: int = MAX_TOKENS) -> tuple[np.ndarray, np.ndarray]:
    """Heavy-tail inflation of raw lengths, independently for prompts and decodes.

    Our reading of the paper ("independently inflate 5% of decode lengths and 5% of prompt
    lengths by 10x"), with both results kept within ``max_tokens``:

    * each prompt, with probability ``prob``, is multiplied by the integer
      ``min(factor, max_tokens // length)`` — so it never exceeds ``max_tokens`` and a
      prompt longer than ``max_tokens / 2`` is left unchanged;
    * each decode, with probability ``prob``, is multiplied by ``factor`` and then capped
      at ``max_tokens`` (so any decode of ``max_tokens / factor`` tokens or more becomes
      exactly ``max_tokens``).

    The two coin flips are independent of each other and across requests.  Returns new
    int64 arrays; the inputs are not modified.
    """
    u = rng.random((len(prompt), 2))
    return _inflate(prompt, decode, u[:, 0], u[:, 1], prob, factor, max_tokens)


def _inflate(prompt, decode, u_prompt, u_decode, prob, factor, max_tokens):
    """:func:`inflate_lengths` with the coin flips given as uniforms in [0, 1)."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob}")
    if factor < 1 or max_tokens < 1:
        raise ValueError(f"factor and max_tokens must be >= 1, got {factor} and {max_tokens}")
    prompt = np.array(prompt, dtype=np.int64)
    decode = np.array(decode, dtype=np.int64)
    if len(prompt) != len(decode):
        raise ValueError(f"prompt and decode lengths differ: {len(prompt)} vs {len(decode)}")
    hit_p = u_prompt < prob
    hit_d = u_decode < prob
    scale = np.clip(max_tokens // np.maximum(prompt, 1), 1, factor)
    prompt[hit_p] *= scale[hit_p]
    decode[hit_d] = np.minimum(decode[hit_d] * factor, max_tokens)
    return prompt, decode


def sample_sharegpt(n: int, rng: np.random.Generator, *, inflate: bool = True,
                    system_prompt_tokens: int = SYSTEM_PROMPT_TOKENS,
                    max_tokens: int = MAX_TOKENS) -> tuple[np.ndarray, np.ndarray]:
    """``n`` request lengths ``(prompt_tokens, decode_tokens)`` drawn from the ShareGPT table.

    Conversations are drawn uniformly with replacement from the table rows whose raw prompt
    and decode are both at most ``max_tokens`` (all rows when ``max_tokens`` is 4,096).
    With ``inflate`` the paper's heavy tail is applied as in :func:`inflate_lengths`.  The
    ``system_prompt_tokens`` are added to every prompt *after* inflation, so an inflated raw
    prompt stays within ``max_tokens`` and a final prompt within
    ``max_tokens + system_prompt_tokens`` (4,138 by default); decodes stay within
    ``max_tokens``.

    Each request consumes three uniforms in turn (row, prompt coin, decode coin), so the
    first ``m`` requests of an ``n``-request draw equal an ``m``-request draw from the same
    generator state, and ``inflate=False`` picks the same conversations as ``inflate=True``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if system_prompt_tokens < 0:
        raise ValueError(f"system_prompt_tokens must be >= 0, got {system_prompt_tokens}")
    prompt, decode = load_sharegpt_lengths()
    if max_tokens < MAX_TOKENS:
        ok = (prompt <= max_tokens) & (decode <= max_tokens)
        if not ok.any():
            raise ValueError(f"no ShareGPT conversation fits max_tokens={max_tokens}")
        prompt, decode = prompt[ok], decode[ok]
    u = rng.random((int(n), 3))
    idx = np.minimum((u[:, 0] * len(prompt)).astype(np.int64), len(prompt) - 1)
    p, d = prompt[idx], decode[idx]
    if inflate:
        p, d = _inflate(p, d, u[:, 1], u[:, 2], INFLATE_PROB, INFLATE_FACTOR, max_tokens)
    return p + int(system_prompt_tokens), np.array(d, dtype=np.int64)
