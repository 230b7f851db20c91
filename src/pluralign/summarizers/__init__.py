"""User summarizers: one interface, three backends (hf, api, cpu)."""
