"""``python -m medvl ...``: the ``medvl`` command (also what ``torchrun -m medvl train`` runs)."""

import sys

from medvl.cli import main

sys.exit(main())
