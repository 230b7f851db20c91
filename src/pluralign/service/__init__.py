"""The feedback service: FastAPI app, storage, auth and the OpenAI-compatible personalisation proxy.

Run it with ``PLURALIGN_ADMIN_KEY=... pluralign serve --host H --port P --db URL [--rm DIR] [--love DIR]
[--upstream-url URL]``; the full API with schemas is at ``/docs`` (OpenAPI: ``/openapi.json``). Every endpoint
but ``GET /healthz`` takes ``Authorization: Bearer <admin key or end-user token>``; errors are JSON
``{"error": {"code", "message", "field"}}``.

==========================================  ===============================================================
``POST /v1/users/{id}/tokens``              (admin) an end-user token bound to ``id``: ``{"token", "token_id", ...}``
                                            (body, optional: ``scope`` full|no_erase, ``expires_in_s``)
``GET /v1/users/{id}/tokens``               (admin) the user's tokens: ids, scopes, creation and expiry times
``DELETE /v1/users/{id}/tokens/{token_id}`` (admin) revoke a token: 401 from its next request on
``POST /v1/users/{id}/feedback``            a batch ``{"events": [...]}`` (``type``: conversation|reaction|pair)
``POST /v1/users/{id}/conversations``       one conversation, turns with ids
``POST /v1/users/{id}/reactions``           one reaction (love 1/0, vote, graded), by text or by turn id
``POST /v1/users/{id}/pairs``               one pairwise choice
``GET|PUT /v1/users/{id}/summary``          view / replace the summary ``{"summary": "..."}`` (new version)
``GET /v1/users/{id}/summary/history``      every version, newest first
``POST /v1/users/{id}/summary:refresh``     summarise the user's newest feedback (also on a schedule)
``DELETE /v1/users/{id}``                   erase the user's events, summaries and tokens (not with a no_erase token)
``POST /v1/score``                          personalised reward and P[Love] of candidates, with model versions
``POST /v1/chat/completions``               OpenAI-compatible proxy: summary into the system prompt, best-of-N
==========================================  ===============================================================

Events carry idempotency keys (default ``TYPE:ITEM_ID``), unique per user: a retried event is stored once and
answered with the stored id. An event is acknowledged only after the transaction holding it has committed. A write
authenticated before an erasure of its user, or before its token's revocation, is refused in its transaction
(:mod:`pluralign.service.erasure`). Input that cannot be stored or re-encoded is refused naming the field
(:mod:`pluralign.service.storable`); ``/v1/score`` is shared fairly between users with per-user limits
(:mod:`pluralign.service.limits`, :class:`pluralign.service.scoring.MicroBatcher`).
Stored feedback becomes training files with ``pluralign data export --db URL --out DIR``
(:func:`pluralign.service.export.export_feedback`).
"""
