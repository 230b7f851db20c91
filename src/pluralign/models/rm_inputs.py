"""What the summary-conditioned reward model reads: the PLUS template, the chat or text-pair rendering, truncation.

The user summary z (or any user text: raw in-context examples, a persona, a group label) goes into the first user
turn with the PLUS template, then the response follows:

* decoder LMs (Qwen2, Llama, ...): one chat rendered with the tokenizer's chat template (user turn, assistant turn);
* encoders (BERT family, e.g. all-MiniLM-L6-v2, the CPU default): a text pair (conditioned prompt, response).

Inputs longer than ``max_length`` are cut in this order: the summary from its front (the end of a context, usually
the most recent part, is kept), then the template's own words, then the prompt from its front, then the response
from its end. The cut is never silent: :meth:`RMInputs.tokenize` returns per-item counts so baselines such as ICL
can report how often and how much was lost.

Symbols the tokenizer cannot read (emojis, for MiniLM's WordPiece vocabulary) are spelled out by their Unicode names
first (:mod:`pluralign.models.symbol_names`); a byte-level tokenizer reads every character, and its texts are not
changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from transformers import BatchEncoding

from pluralign.models.symbol_names import SymbolSpeller

PLUS_TEMPLATE = (
    "Here is the summary of my preferences based on previous conversations: {summary} In the following "
    "conversation, keep this in mind to personalize your response.\n\n{prompt}"
)

# Token roles used to decide what to cut. Chat markup and special tokens are fixed; the template's own words
# ("Here is the summary ...") are cut only once the whole summary is gone, when they no longer say anything.
_FIXED, _SUMMARY, _PROMPT, _RESPONSE, _WRAPPER = 0, 1, 2, 3, 4


class TokenizedItems(NamedTuple):
    """Unpadded token ids per item (``token_type_ids`` for encoders, else None) and what truncation removed."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    summary_tokens_kept: list[int]
    summary_tokens_cut: list[int]
    prompt_tokens_cut: list[int]
    response_tokens_cut: list[int]


class RMEncoding(NamedTuple):
    """Model inputs (right-padded tensors) plus an account of what truncation removed, one entry per item."""

    batch: Any  # transformers.BatchEncoding: input_ids, attention_mask[, token_type_ids]
    summary_tokens_kept: list[int]
    summary_tokens_cut: list[int]
    prompt_tokens_cut: list[int]
    response_tokens_cut: list[int]


def check_texts(prompts, responses, summaries):
    """Lists of equal length (summaries default to None); a single string or an empty batch is an error."""
    if isinstance(prompts, str) or isinstance(responses, str):
        raise TypeError("prompts and responses must be sequences of strings, not a single string")
    prompts, responses = list(prompts), list(responses)
    summaries = [None] * len(prompts) if summaries is None else list(summaries)
    if not (len(prompts) == len(responses) == len(summaries)):
        raise ValueError(f"length mismatch: {len(prompts)} prompts, {len(responses)} responses, "
                         f"{len(summaries)} summaries")
    if not prompts:
        raise ValueError("nothing to encode: empty batch")
    return prompts, responses, summaries


def pad_right(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """A (len(rows), longest) long tensor, each row left-aligned and filled with ``value``."""
    out = torch.full((len(rows), max(len(r) for r in rows)), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(list(r), dtype=torch.long)
    return out


class RMInputs:
    """Renders (prompt, response, summary) for one tokenizer and cuts it to ``max_length`` tokens, reporting cuts."""

    def __init__(self, tokenizer, *, is_encoder: bool, max_length: int, template: str = PLUS_TEMPLATE,
                 spell_symbols: bool = True) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("the reward model needs a fast tokenizer (offsets are used to report truncation)")
        if "{summary}" not in template or "{prompt}" not in template:
            raise ValueError("template must contain {summary} and {prompt}")
        if template.index("{summary}") > template.index("{prompt}"):
            raise ValueError("template must place {summary} before {prompt}")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self.is_encoder = is_encoder
        self.max_length = int(max_length)
        self.template = template
        self.speller = SymbolSpeller(tokenizer) if spell_symbols else None
        self._skeleton = None if is_encoder else self._chat_skeleton()

    # ------------------------------------------------------------------ formatting
    def _chat_skeleton(self) -> tuple[str, str, str]:
        """Split the chat rendering into (before user text, between user and response, after response)."""
        tok = self.tokenizer
        if not getattr(tok, "chat_template", None):
            return "", "\n\n", tok.eos_token or ""
        u, r = "\x00USER\x00", "\x00RESPONSE\x00"
        text = tok.apply_chat_template([{"role": "user", "content": u}, {"role": "assistant", "content": r}],
                                       tokenize=False)
        if text.count(u) != 1 or text.count(r) != 1:
            raise ValueError("the tokenizer's chat template does not render user/assistant content verbatim")
        a, rest = text.split(u)
        b, c = rest.split(r)
        return a, b, c

    def _spelled(self, text: str | None) -> str | None:
        return self.speller(text) if self.speller is not None else text

    def _user_turn(self, prompt: str, summary: str | None) -> str:
        """The user turn of texts already spelled out."""
        if summary is None or not str(summary).strip():
            return prompt
        return self.template.format(summary=summary, prompt=prompt)

    def _joined(self, user: str, response: str) -> str:
        """User turn and (spelled) response as one text: the [SEP] pair for encoders, the chat otherwise."""
        if self.is_encoder:
            sep = self.tokenizer.sep_token or "\n"
            return f"{user} {sep} {response}"
        a, b, c = self._skeleton
        return a + user + b + response + c

    def format_user_turn(self, prompt: str, summary: str | None = None) -> str:
        """The first user turn: the PLUS template when there is a summary, the plain prompt otherwise."""
        return self._user_turn(self._spelled(prompt), self._spelled(summary))

    def format_input(self, prompt: str, response: str, summary: str | None = None) -> str:
        """The full text the backbone sees before truncation (for encoders: the pair joined by [SEP])."""
        return self._joined(self.format_user_turn(prompt, summary), self._spelled(response))

    def _spans(self, prompt: str, summary: str | None, offset: int) -> tuple[tuple[int, int], ...]:
        """Character spans (start, end) of the summary, the prompt and the whole user turn, shifted by ``offset``."""
        if summary is None or not str(summary).strip():
            return (0, 0), (offset, offset + len(prompt)), (offset, offset + len(prompt))
        s0 = offset + len(self.template.split("{summary}")[0])
        s1 = s0 + len(summary)
        user = self.template.format(summary=summary, prompt=prompt)
        p1 = offset + len(user) - len(self.template.split("{prompt}")[1])
        return (s0, s1), (p1 - len(prompt), p1), (offset, offset + len(user))

    # ------------------------------------------------------------------ truncation
    @staticmethod
    def _roles(offsets, seq_ids, spans, response_span, response_seq) -> list[int]:
        summary_span, prompt_span, user_span = spans
        roles = []
        for (a, b), sid in zip(offsets, seq_ids, strict=True):
            if sid is None or b <= a:
                roles.append(_FIXED)  # special tokens, or zero-width pieces
            elif response_seq is not None and sid == response_seq:
                roles.append(_RESPONSE)
            elif a < summary_span[1] and b > summary_span[0]:
                roles.append(_SUMMARY)
            elif a < prompt_span[1] and b > prompt_span[0]:
                roles.append(_PROMPT)
            elif response_seq is None and a < response_span[1] and b > response_span[0]:
                roles.append(_RESPONSE)
            elif a < user_span[1] and b > user_span[0]:
                roles.append(_WRAPPER)
            else:
                roles.append(_FIXED)
        return roles

    @staticmethod
    def _truncate(ids: list[int], roles: list[int], extra: list[list[int]], max_length: int):
        """Drop tokens until ``len(ids) <= max_length``: summary front, template words, prompt front, response end."""
        excess = len(ids) - max_length
        drop: set[int] = set()
        cut = {_SUMMARY: 0, _WRAPPER: 0, _PROMPT: 0, _RESPONSE: 0}
        for role, from_end in ((_SUMMARY, False), (_WRAPPER, False), (_PROMPT, False), (_RESPONSE, True)):
            if excess <= 0:
                break
            idx = [i for i, r in enumerate(roles) if r == role]
            if from_end:
                idx = idx[::-1]
            take = idx[:excess]
            drop.update(take)
            cut[role] += len(take)
            excess -= len(take)
        keep = [i for i in range(len(ids)) if i not in drop]
        if len(keep) > max_length:  # only fixed markup left: keep the first token ([CLS]/BOS) and the end
            keep = keep[:1] + keep[len(keep) - max_length + 1:]
        return [ids[i] for i in keep], [[e[i] for i in keep] for e in extra], cut

    # ------------------------------------------------------------------ tokenising
    def tokenize(self, prompts: Sequence[str], responses: Sequence[str],
                 summaries: Sequence[str | None] | None = None, max_length: int | None = None) -> TokenizedItems:
        """Token ids per item, cut to ``max_length`` (default: the model's), with per-item cut counts."""
        prompts, responses, summaries = check_texts(prompts, responses, summaries)
        if self.speller is not None:  # spelled once here: the spans below are offsets into the spelled texts
            prompts, responses, summaries = ([self.speller(t) for t in col] for col in (prompts, responses, summaries))
        max_length = int(max_length or self.max_length)
        tok = self.tokenizer
        users = [self._user_turn(p, s) for p, s in zip(prompts, summaries, strict=True)]
        if self.is_encoder:
            enc = tok(users, list(responses), add_special_tokens=True, return_offsets_mapping=True,
                      truncation=False, verbose=False)
        else:
            texts = [self._joined(u, r) for u, r in zip(users, responses, strict=True)]
            enc = tok(texts, add_special_tokens=not bool(getattr(tok, "chat_template", None)),
                      return_offsets_mapping=True, truncation=False, verbose=False)
        specials = set(tok.all_special_ids)
        has_tt = self.is_encoder and "token_type_ids" in enc
        out = TokenizedItems([], [] if has_tt else None, [], [], [], [])
        for i in range(len(users)):
            if self.is_encoder:
                spans = self._spans(prompts[i], summaries[i], 0)
                roles = self._roles(enc["offset_mapping"][i], enc.sequence_ids(i), spans, (0, 0), 1)
            else:
                a, b, _ = self._skeleton
                spans = self._spans(prompts[i], summaries[i], len(a))
                r0 = len(a) + len(users[i]) + len(b)
                seq_ids = [None if t in specials else 0 for t in enc["input_ids"][i]]
                roles = self._roles(enc["offset_mapping"][i], seq_ids, spans, (r0, r0 + len(responses[i])), None)
            extra = [list(enc["token_type_ids"][i])] if has_tt else []
            ids, extra, cut = self._truncate(list(enc["input_ids"][i]), roles, extra, max_length)
            out.input_ids.append(ids)
            if has_tt:
                out.token_type_ids.append(extra[0])
            out.summary_tokens_kept.append(sum(1 for r in roles if r == _SUMMARY) - cut[_SUMMARY])
            out.summary_tokens_cut.append(cut[_SUMMARY])
            out.prompt_tokens_cut.append(cut[_PROMPT])
            out.response_tokens_cut.append(cut[_RESPONSE])
        return out

    def encode(self, prompts: Sequence[str], responses: Sequence[str],
               summaries: Sequence[str | None] | None = None, max_length: int | None = None) -> RMEncoding:
        """Tokenise a batch into right-padded tensors and report, per item, summary tokens kept/cut and other cuts."""
        items = self.tokenize(prompts, responses, summaries, max_length)
        data = {"input_ids": pad_right(items.input_ids, self.tokenizer.pad_token_id),
                "attention_mask": pad_right([[1] * len(x) for x in items.input_ids], 0)}
        if items.token_type_ids is not None:
            data["token_type_ids"] = pad_right(items.token_type_ids, 0)
        return RMEncoding(BatchEncoding(data), items.summary_tokens_kept, items.summary_tokens_cut,
                          items.prompt_tokens_cut, items.response_tokens_cut)
