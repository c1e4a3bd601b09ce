"""AutoAttack robust accuracy on every robust model's card, with PGD-20 on the same images beside it.

For each model below whose card has no AutoAttack entry yet: `python -m sia_core evaluate --model M --attack
autoattack --eps E --n N --add-to-card` at the card's headline radius and norm, on the first N test images (500 for
Fashion-MNIST and Shapes; 200 of the embedded CIFAR-10 subset, where one model takes about half an hour on a CPU thread). Each finished
model is written to its card at once, so a stopped run resumes with the next. Run it in the background:

    nohup env OMP_NUM_THREADS=1 .venv/bin/python scripts/autoattack_cards.py > artifacts/logs/autoattack.log 2>&1 &
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the robust models (PGD-20 robust accuracy above 10% at the card's radius), the zoos' first
MODELS = ("fmnist-robust", "fmnist-trades", "fmnist-pgd-0.2", "fmnist-fgsm-rs", "fmnist-pgd-l2", "fmnist-pgd-0.05",
          "fmnist-sia-at", "shapes-robust", "shapes-sia-at", "cifar10-robust", "cifar10-robust-l2")
N = {"fashion-mnist": 500, "shapes": 500, "cifar10": 200}
# the test set of each card's headline entry: CIFAR-10's is the embedded first 1,017 test images (exact pixels)
DATA = {"cifar10": ["--data", "cifar10-subset"]}


def headline_attack(card: dict) -> dict | None:
    return next((entry for entry in card["evaluations"] if entry.get("attack", "") and
                 entry["attack"].startswith(("pgd-", "fgsm"))), None)


def main(models: tuple[str, ...]) -> int:
    for model in models:
        card = json.loads((ROOT / "assets" / "models" / model / "card.json").read_text())
        if any((entry.get("attack") or "").startswith("autoattack") for entry in card["evaluations"]):
            print(f"{model}: done", flush=True)
            continue
        headline = headline_attack(card)
        if headline is None:
            print(f"{model}: no PGD entry on its card, skipped", flush=True)
            continue
        world = card["dataset"].split(":")[0]
        n = next(count for prefix, count in N.items() if world.startswith(prefix))
        data = next((spec for prefix, spec in DATA.items() if world.startswith(prefix)), [])
        command = [sys.executable, "-m", "sia_core", "evaluate", "--model", model, *data, "--attack", "autoattack",
                   "--eps", f"{headline['eps']:g}", "--n", str(n), "--add-to-card", "--json"]
        print(f"{model}: {' '.join(command[1:])}", flush=True)
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        print(done.stdout.strip() or done.stderr[-2000:], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(tuple(sys.argv[1:]) or MODELS))
