"""The claims scorecard's verdicts beside a page's own takeaway: when a page shows a shipped study, the sentence that
draws its conclusion ends with the verdict of the claim it bears on (measured against its control, with its
interval), so no page states a paper's conclusion that the scorecard says does not hold here."""

from __future__ import annotations

from typing import Iterable, Optional

from sia_app import cache
from sia_app.worlds import world_of
from sia_core.claims import VERDICT_WORDS, ClaimVerdict

SCORECARD_WORLDS = ("fashion-mnist", "cifar10")


def world_claims(dataset_spec: str, claim_ids: Iterable[str]) -> list[ClaimVerdict]:
    """The claims `claim_ids` of the dataset's world, in that order (none where no scorecard ships)."""
    world = world_of(dataset_spec, SCORECARD_WORLDS)
    card = cache.shipped_scorecard(world) if world is not None else None
    if card is None:
        return []
    by_id = card.by_id()
    return [by_id[claim_id] for claim_id in claim_ids if claim_id in by_id]


def verdict_notes(dataset_spec: str, claim_ids: Iterable[str], *, measured_only: bool = True) -> str:
    """"**Does not reproduce here.** why …" for each claim (not-measured ones left out by default): the why's lead,
    its evidence being the page's own charts and tables."""
    return " ".join(f"**{VERDICT_WORDS[claim.verdict]}** {claim.lead}"
                    for claim in world_claims(dataset_spec, claim_ids)
                    if not measured_only or claim.verdict != "not-measured")


def verdict_list(dataset_spec: str, labelled_ids: dict[str, str]) -> str:
    """One markdown bullet per measured claim, "- **label: Reproduces.** why", for a section that weighs several
    claims at once (a run-on paragraph of verdicts is hard to read); each the why's lead, as `verdict_notes`."""
    labels = {claim_id: label for label, claim_id in labelled_ids.items()}
    return "\n".join(f"- **{labels[claim.id]}: {VERDICT_WORDS[claim.verdict]}** {claim.lead}"
                     for claim in world_claims(dataset_spec, labelled_ids.values()) if claim.verdict != "not-measured")


def verdict_and_evidence(dataset_spec: str, claim_id: str) -> tuple[str, str]:
    """("**Partly reproduces.** the verdict's sentence", the numbers behind it) of a claim whose why gives them after
    a blank line (the second part empty otherwise, both empty without a scorecard): a page shows the first and folds
    the second away."""
    claim = verdict_of(dataset_spec, claim_id)
    if claim is None:
        return "", ""
    return f"**{VERDICT_WORDS[claim.verdict]}** {claim.lead}", claim.evidence


def verdict_of(dataset_spec: str, claim_id: str) -> Optional[ClaimVerdict]:
    claims = world_claims(dataset_spec, (claim_id,))
    return claims[0] if claims else None
