"""The feedback service: FastAPI app, storage, auth and the OpenAI-compatible personalisation proxy."""
