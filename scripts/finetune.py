"""Fine-tuning entry point.

``accelerate launch [--config_file scripts/accelerate/X.yaml] scripts/finetune.py --config R.yaml``,
``torchrun --nproc_per_node N scripts/finetune.py ...`` or ``python scripts/finetune.py ...``.
"""

import sys

from vqa.cli import main

if __name__ == "__main__":
    sys.exit(main(["finetune", *sys.argv[1:]]))
