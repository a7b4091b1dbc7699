"""The operator's word over the submitter's and the service's: limits clamped, claims policed.

Quotas: dispatcher.quota (shared by every dispatcher); fair shares: dispatcher.fairshare.

A submission asking for more than the operator allows gets the operator's maximum, and its tree
says so (a `policy` error on its first file). A service result is held to what the operator
approved for that service (`ApprovedService`): a score outside the approved range is clamped, a
`drop` from a service not approved to drop is ignored, each with a `policy` error in the tree.
"""

from __future__ import annotations

import msgspec

from schemas.limits import OperatorLimits
from schemas.messages import ApprovedService, ServiceError, ServiceResult, SubmissionParams, policy_error

DISPATCHER = "dispatcher"


def clamp_params(params: SubmissionParams, limits: OperatorLimits) -> tuple[SubmissionParams, list[ServiceError]]:
    """`params` within `limits`, and what was cut, as errors for the tree."""
    changes: dict[str, object] = {}
    notes: list[ServiceError] = []
    for field in ("max_depth", "max_files", "max_children"):
        asked, most = getattr(params, field), getattr(limits, field)
        if asked > most or asked < 0:
            changes[field] = most if asked > most else 0
            notes.append(policy_error(DISPATCHER, f"{field} {asked} asked; the operator allows {most}, so {changes[field]} applies"))
    if params.deep_scan and not limits.allow_deep_scan:
        changes["deep_scan"] = False
        notes.append(policy_error(DISPATCHER, "deep scan asked; the operator does not allow it"))
    return (msgspec.structs.replace(params, **changes) if changes else params), notes


def police(result: ServiceResult, approved: ApprovedService | None) -> ServiceError | None:
    """Hold `result` to its service's approval, in place; what was overridden, as an error."""
    if approved is None:  # planned only from approvals, so only a result that raced a revocation
        result.score, result.drop = 0, False
        return policy_error(result.service, "not approved by the operator: its score and drop ignored")
    said: list[str] = []
    if not approved.score_min <= result.score <= approved.score_max:
        said.append(f"score {result.score} outside the approved range [{approved.score_min}, {approved.score_max}], clamped")
        result.score = min(max(result.score, approved.score_min), approved.score_max)
    if result.drop and not approved.may_drop:
        said.append("asked to drop the file, which it is not approved to do: ignored")
        result.drop = False
    return policy_error(result.service, "; ".join(said)) if said else None
