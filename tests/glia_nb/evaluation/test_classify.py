"""Error kinds come from the exception's type, not from its message or file."""
from __future__ import annotations

import pytest

from glia_nb.evaluation.worker import classify
from sim_core.policies import (MissingPolicyClassError, PolicyFileNotFoundError,
                               PolicyImportError, PolicyParameterError, UnknownPolicyError)


@pytest.mark.parametrize("exc, kind", [
    (MissingPolicyClassError("whatever the text says"), "missing_class"),
    (PolicyImportError("policy file x.py has no class 'Y'"), "import"),  # the words do not count
    (PolicyFileNotFoundError("gone"), "import"),
    (UnknownPolicyError("nope"), "import"),
    (PolicyParameterError("bad"), "import"),
    (RuntimeError("has no class 'CustomRouter'"), "exception"),
    (MemoryError(), "memory"),
])
def test_classify_by_type(exc, kind):
    assert classify(exc) == kind
