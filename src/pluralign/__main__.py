import sys

from pluralign.cli import main

sys.exit(main())
