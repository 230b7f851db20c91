"""pluralign: learn what each user wants from their feedback."""

__version__ = "0.1.0"
