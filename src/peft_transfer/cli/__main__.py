"""`python -m peft_transfer.cli ...` (and `accelerate launch -m peft_transfer.cli ...`)."""

import sys

from . import main

sys.exit(main())
