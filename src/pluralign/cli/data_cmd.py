"""``pluralign data``: convert public formats to feedback files, validate, describe, split, move to/from HF datasets.

Every command that writes leaves the previous output untouched when it fails (files are written atomically, and
conversions read and check all their input before writing anything).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from pydantic import ValidationError

from pluralign.config import config_help, load_config
from pluralign.data.converters import FORMATS, get_converter
from pluralign.data.io import (
    FeedbackFileError,
    RecordIssue,
    from_hf_dataset,
    iter_records,
    read_users,
    to_hf_dataset,
    validate_file,
    write_users,
)
from pluralign.data.splits import make_splits
from pluralign.data.stats import compute_stats, format_stats

SPLIT_FILES = ("train", "seen-users", "new-users", "new-topics", "chrono")
# `data convert ratings FILE --user-col U --item-col I --text-col T --rating-col R [--profile-cols C1,C2] [--prompt P]`
RATINGS_FLAGS = (
    ("--user-col", "user_col", "ratings: column holding the user id (default user_id)"),
    ("--item-col", "item_col", "ratings: column holding the item id (default item_id)"),
    ("--text-col", "text_col", "ratings: column holding the item's text (default text)"),
    ("--rating-col", "rating_col", "ratings: column holding the numeric rating (default rating)"),
    ("--profile-cols", "profile_cols", "ratings: comma-separated columns that describe the user (become the profile)"),
    ("--time-col", "time_col", "ratings: optional column with the rating's time (epoch seconds or ISO date)"),
    ("--prompt", "prompt", "ratings: the prompt every pair answers"),
)


def register(sub) -> None:
    p = sub.add_parser("data", help="convert, validate, describe, split and export feedback files",
                       description="Work with pluralign feedback files (JSONL, one user record per line).")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    c = dsub.add_parser(
        "convert", help="convert a public dataset into a feedback file",
        description="Convert SOURCE (a file or folder in FORMAT) into a pluralign feedback file. The whole source is "
        "read and checked first: on any bad row every problem is listed (file:line: field: message), exit code is 1 "
        "and --out is not touched. Formats: " + "; ".join(f"{k}" for k in FORMATS) + ". Use "
        "'pluralign data formats' to see each format's options.")
    c.add_argument("format", choices=list(FORMATS), metavar="FORMAT", help=f"source format: {', '.join(FORMATS)}")
    c.add_argument("source", type=Path, metavar="SOURCE", help="source file or folder")
    c.add_argument("--out", type=Path, required=True, help="feedback file to write (JSONL; replaced atomically)")
    c.add_argument("-s", "--set", action="append", default=[], metavar="KEY=VALUE",
                   help="converter option, repeatable (see 'pluralign data formats')")
    c.add_argument("--config", type=Path, default=None, help="YAML file of converter options (--set wins)")
    rc = c.add_argument_group("ratings format (a per-user ratings table; shorthands for -s KEY=VALUE)")
    for flag, key, text in RATINGS_FLAGS:
        rc.add_argument(flag, dest=f"ratings_{key}", default=None, metavar="NAME" if "col" in key else "TEXT",
                        help=text)
    c.set_defaults(func=run_convert)

    f = dsub.add_parser("formats", help="list the source formats and their options",
                        description="List every source format 'data convert' reads, with its options and defaults.")
    f.set_defaults(func=run_formats)

    v = dsub.add_parser("validate", help="check feedback files and list every bad record",
                        description="Check each FILE against the pluralign schema. Every bad record is printed as "
                        "file:line: field: message (not just the first). Exit code 1 if any, else 0 with a count.")
    v.add_argument("files", nargs="+", type=Path, metavar="FILE", help="feedback files (JSONL, optionally .gz)")
    v.set_defaults(func=run_validate)

    s = dsub.add_parser("stats", help="describe a feedback file",
                        description="Print users, items per user (pairs, conversations, reactions, targets: total, "
                        "mean, median, max), label balance (chosen-first share, p_chosen mean, winners), reaction "
                        "values by kind, and sources.")
    s.add_argument("file", type=Path, metavar="FILE", help="feedback file")
    s.add_argument("--json", action="store_true", help="print the statistics as JSON")
    s.set_defaults(func=run_stats)

    t = dsub.add_parser("to-hf", help="save a feedback file as a HF datasets folder",
                        description="Save FILE with datasets' save_to_disk (nested meta travels as JSON strings); "
                        "'data from-hf' reads it back to identical records.")
    t.add_argument("file", type=Path, metavar="FILE", help="feedback file")
    t.add_argument("--out", type=Path, required=True, help="folder to create")
    t.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    t.set_defaults(func=run_to_hf)

    h = dsub.add_parser("from-hf", help="write a feedback file from a HF datasets folder",
                        description="Load DIR with datasets' load_from_disk (as written by 'data to-hf') and write a "
                        "feedback file.")
    h.add_argument("dir", type=Path, metavar="DIR", help="datasets folder")
    h.add_argument("--out", type=Path, required=True, help="feedback file to write")
    h.set_defaults(func=run_from_hf)

    sp = dsub.add_parser(
        "split", help="make train / evaluation splits",
        description="Split FILE with pluralign.data.splits.make_splits and write OUT/train.jsonl, seen-users.jsonl, "
        "new-users.jsonl, new-topics.jsonl and chrono.jsonl. Each line is a user record holding one user's "
        "visible context and, in 'targets', the pairs to predict from it. When one user has examples with different "
        "contexts in a split, the extra records get ids 'USER#2', ... (meta.user_id keeps the real id).")
    sp.add_argument("file", type=Path, metavar="FILE", help="feedback file")
    sp.add_argument("--out", type=Path, required=True, help="folder for the split files")
    sp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sp.set_defaults(func=run_split)

    e = dsub.add_parser("export", help="export feedback collected by the service to files",
                        description="Export everything the feedback service stored (database URL) into DIR using "
                        "pluralign.service.export.export_feedback, and print its summary.")
    e.add_argument("--db", required=True, metavar="URL", help="SQLAlchemy database URL, e.g. sqlite:///feedback.db")
    e.add_argument("--out", type=Path, required=True, help="output folder")
    e.set_defaults(func=run_export)

    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _check_out_file(out: Path) -> None:
    if out.is_dir():
        raise ValueError(f"--out {out}: is a folder; give a file name such as {out / 'users.jsonl'}")


def _convert_opts(mod, args) -> dict:
    flags = [(flag, key, getattr(args, f"ratings_{key}", None)) for flag, key, _ in RATINGS_FLAGS]
    given = [(flag, key, v) for flag, key, v in flags if v is not None]
    if given and args.format != "ratings":
        raise ValueError(f"{given[0][0]} applies to the ratings format only (this is {args.format})")
    opts = dataclasses.asdict(load_config(mod.Options, args.config, args.set))
    opts.update({key: v for _, key, v in given})  # taken verbatim: a prompt may hold any characters
    return opts


def run_convert(args) -> int:
    _check_out_file(args.out)
    mod = get_converter(args.format)
    opts = _convert_opts(mod, args)
    t0 = time.perf_counter()
    users = mod.convert(args.source, **opts)
    if not users:
        raise ValueError(f"{args.source}: no user records found (nothing written)")
    dupes = [u for u, n in Counter(u.user_id for u in users).items() if n > 1]
    if dupes:
        raise ValueError(f"{args.source}: the conversion produced duplicate user ids, e.g. {dupes[0]!r} "
                         "(two sources with the same name?); nothing written")
    n = write_users(args.out, users)
    counts = {k: sum(len(getattr(u, k)) for u in users) for k in ("pairs", "conversations", "reactions", "targets")}
    detail = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    print(f"wrote {n} users ({detail}) to {args.out} in {time.perf_counter() - t0:.1f}s")
    return 0


def run_formats(args) -> int:
    for name in FORMATS:
        mod = get_converter(name)
        print(f"{name}: {mod.SUMMARY}")
        print(config_help(mod.Options))
    return 0


def run_validate(args) -> int:
    n_ok = n_bad = 0
    for path in args.files:
        n, issues = validate_file(path)
        n_ok += n
        n_bad += len(issues)
        for issue in issues:
            print(issue)
        if not issues:
            print(f"{path}: {n} valid records")
    if n_bad:
        print(f"{n_bad} problem(s) found in {len(args.files)} file(s); {n_ok} records are valid", file=sys.stderr)
        return 1
    print(f"ok: {n_ok} valid records in {len(args.files)} file(s)")
    return 0


def run_stats(args) -> int:
    stats = compute_stats(iter_records(args.file))
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats, title=str(args.file)))
    return 0


def run_to_hf(args) -> int:
    out: Path = args.out
    if out.exists() and not args.overwrite:
        raise ValueError(f"{out}: already exists (use --overwrite to replace it)")
    users = read_users(args.file)
    ds = to_hf_dataset(users)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        ds.save_to_disk(str(tmp / "ds"))
        if out.exists():
            shutil.rmtree(out)
        (tmp / "ds").rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"saved {len(ds)} users to {out}")
    return 0


def run_from_hf(args) -> int:
    import datasets

    _check_out_file(args.out)
    if not args.dir.is_dir():
        raise FileNotFoundError(f"{args.dir}: not a folder")
    try:
        ds = datasets.load_from_disk(str(args.dir))
    except Exception as e:  # datasets raises several types for a folder it cannot read
        raise ValueError(f"{args.dir}: cannot load as a HF datasets folder: {e}") from None
    if isinstance(ds, datasets.DatasetDict):
        raise ValueError(f"{args.dir}: holds several splits ({', '.join(ds)}); pass one split's folder")
    try:
        users = from_hf_dataset(ds)
    except ValidationError:
        issues = []
        for i in range(len(ds)):  # find and name every bad row
            try:
                from_hf_dataset(ds.select([i]))
            except ValidationError as e:
                issues += [RecordIssue(str(args.dir), i + 1, ".".join(map(str, er["loc"])), er["msg"])
                           for er in e.errors()]
        raise FeedbackFileError(issues) from None
    n = write_users(args.out, users)
    print(f"wrote {n} users to {args.out}")
    return 0


def split_records(examples) -> list:
    """One record per (user, context) with that context's targets; see the ``split`` help for ids."""
    groups: dict[str, list] = {}
    for ex in examples:
        key = ex.context.model_dump_json(exclude={"targets"})
        mine = groups.setdefault(ex.user_id, [])
        for k, targets in mine:
            if k == key:
                targets.append(ex)
                break
        else:
            mine.append((key, [ex]))
    records = []
    for user_id, contexts in groups.items():
        for i, (_, exs) in enumerate(contexts):
            ctx = exs[0].context
            meta = dict(ctx.meta)
            rid = user_id
            if i:
                rid = f"{user_id}#{i + 1}"
                meta["user_id"] = user_id
            records.append(ctx.model_copy(update={"user_id": rid, "targets": [e.target for e in exs], "meta": meta}))
    return records


def run_split(args) -> int:
    users = read_users(args.file)
    result = make_splits(users, seed=args.seed)
    by_name = {"train": result.train, **result.eval}
    args.out.mkdir(parents=True, exist_ok=True)
    for name in SPLIT_FILES:
        examples = by_name.get(name, [])
        n = write_users(args.out / f"{name}.jsonl", split_records(examples))
        print(f"{name}: {len(examples)} examples, {n} records -> {args.out / (name + '.jsonl')}")
    return 0


def run_export(args) -> int:
    try:
        mod = importlib.import_module("pluralign.service.export")
    except ModuleNotFoundError as e:
        if e.name not in ("pluralign.service.export", "pluralign.service"):
            raise
        print("error: 'data export' needs pluralign.service.export (the feedback service's exporter), which is not "
              "installed in this build", file=sys.stderr)
        return 1
    summary = mod.export_feedback(args.db, args.out)
    if summary.get("repaired_texts"):
        print(f"warning: {summary['repaired_texts']} stored text(s) held lone UTF-16 surrogates (not valid Unicode); "
              "they were exported with U+FFFD in their place (events: "
              f"{summary.get('repaired_event_ids')})", file=sys.stderr)
    print(json.dumps(summary, indent=2, default=str))
    return 0
