"""Densification strategies behind one interface (`base.Strategy`); one file per strategy."""

from spatial.splats.strategies.base import StepInfo, Strategy
from spatial.splats.strategies.default import DefaultStrategy
from spatial.splats.strategies.mcmc import MCMCStrategy

__all__ = ["DefaultStrategy", "MCMCStrategy", "StepInfo", "Strategy"]
