"""mizzen.yaml: parse with positions, overlay an environment, validate into typed models."""

from mizzen.spec.loader import SPEC_FILE, Spec, find_spec, load
from mizzen.spec.models import Project

__all__ = ["SPEC_FILE", "Project", "Spec", "find_spec", "load"]
