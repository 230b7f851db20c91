"""Close the loop: stored feedback → the training files the reward-model, PLUS and P[Love] trainers read.

Writes ``feedback.jsonl`` (one :class:`~pluralign.data.schema.UserRecord` per user: pairs, conversations and
reactions, with each user's current summary in ``meta.summary``) and ``pairs.jsonl`` (TRL preference rows,
``prompt``/``chosen``/``rejected`` + ``user_id``). Both are written atomically; the database is only read.

The service refuses text that is not valid Unicode (lone UTF-16 surrogates), but a database written before it did
may hold some; one user's such event must not stop everyone's export. Those characters are written as U+FFFD, and
the summary says how many texts were repaired and in which events (``repaired_texts``, ``repaired_event_ids``).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.orm import Session
from tqdm import tqdm

from pluralign.data.io import pairs_to_trl_rows, write_jsonl_objects, write_users
from pluralign.service import summaries
from pluralign.service.db import make_engine
from pluralign.service.records import BuildStats, build_user_record
from pluralign.service.storable import repair_unencodable
from pluralign.service.tables import FeedbackEvent


def export_feedback(db_url: str, out_dir: Path) -> dict:
    """Export every user's stored feedback under ``out_dir``; return counts (users, pairs, reactions, ...).

    The database must already be at the current schema (the server migrates it on start); nothing is written to
    it. Reactions that point at a turn that was never stored are skipped and counted (``unresolved_reactions``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(db_url)
    stats = BuildStats()
    users = []
    repaired, repaired_ids = 0, []
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("feedback_events"):
                raise ValueError(f"{db_url}: no pluralign feedback tables (start 'pluralign serve --db' on it first)")
        with engine.connect() as conn, tqdm(desc="export users", unit="user") as bar:
            session = Session(bind=conn)
            user_ids = session.scalars(sa.select(FeedbackEvent.user_id).distinct().order_by(FeedbackEvent.user_id))
            for uid in list(user_ids):
                events = session.scalars(sa.select(FeedbackEvent).where(FeedbackEvent.user_id == uid)
                                         .order_by(FeedbackEvent.id)).all()
                rows = []
                for e in events:  # copies: the repair never reaches the database
                    payload, n = repair_unencodable(e.payload)
                    if n:
                        repaired += n
                        repaired_ids.append(e.id)
                    rows.append(SimpleNamespace(id=e.id, kind=e.kind, payload=payload))
                rec = build_user_record(uid, rows, stats)
                cur = summaries.current(session, uid)
                if cur is not None:
                    text, n = repair_unencodable(cur.text)
                    repaired += n
                    rec.meta["summary"] = text
                    rec.meta["summary_version"] = cur.version
                users.append(rec)
                bar.update(1)
    finally:
        engine.dispose()
    feedback_path, pairs_path = out_dir / "feedback.jsonl", out_dir / "pairs.jsonl"
    write_users(feedback_path, users)
    rows = pairs_to_trl_rows(users)
    write_jsonl_objects(pairs_path, rows)
    return {
        "users": len(users),
        "pairs": sum(len(u.pairs) for u in users),
        "conversations": sum(len(u.conversations) for u in users),
        "reactions": sum(len(u.reactions) for u in users),
        "unresolved_reactions": stats.unresolved_reactions,
        "repaired_texts": repaired,
        "repaired_event_ids": repaired_ids[:100],
        "trl_rows": len(rows),
        "feedback_file": str(feedback_path),
        "pairs_file": str(pairs_path),
    }
