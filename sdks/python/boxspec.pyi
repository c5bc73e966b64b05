"""Validate, normalise and digest sandbox box specs."""

__version__: str

class SpecError(ValueError):
    """Invalid box spec. ``str(err)`` is ``"<path>: <reason>"`` (just the reason when path is empty)."""

    path: str
    reason: str

def validate(json: str) -> None:
    """Raise :class:`SpecError` if ``json`` is not a valid box spec."""

def digest(json: str) -> str:
    """``sha256:<hex>`` digest of the normalised spec."""

def normalize(json: str) -> str:
    """Canonical JSON form of the spec."""
