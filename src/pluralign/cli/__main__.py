"""``python -m pluralign.cli`` (what ``accelerate launch -m pluralign.cli ...`` runs)."""

import sys

from pluralign.cli import main

sys.exit(main())
