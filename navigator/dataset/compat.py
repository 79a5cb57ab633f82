"""What makes episodes usable together: the same image size and the same action convention. A model trained on
mixed sizes or conventions would be silently wrong, so mixing is refused with both sources named."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from navigator.dataset.errors import IncompatibleDatasetsError


@dataclass(frozen=True)
class SourceFormat:
    """Where a dataset or episode comes from, and the properties that must agree to combine it with others."""

    source: str
    image_size: tuple[int, int]  # (height, width)
    action_convention: str


def require_compatible(sources: Sequence[SourceFormat]) -> None:
    """Raise IncompatibleDatasetsError naming the first pair of sources that disagree."""
    if not sources:
        return
    first = sources[0]
    for other in sources[1:]:
        if other.image_size != first.image_size:
            raise IncompatibleDatasetsError(
                f"different image sizes: {first.source} has {first.image_size[1]}x{first.image_size[0]} images but "
                f"{other.source} has {other.image_size[1]}x{other.image_size[0]} (width x height); record them at "
                f"one camera size")
        if other.action_convention != first.action_convention:
            raise IncompatibleDatasetsError(
                f"different action conventions: {first.source} uses {first.action_convention!r} but "
                f"{other.source} uses {other.action_convention!r}")
