"""Answering-machine detection: the production detector, its parameters, and app_amd as a baseline."""

from ringback.amd.detector import Detector, DetectorBank
from ringback.amd.events import AmdEvent, GreetingEnd, Verdict
from ringback.amd.params import AmdParams

__all__ = ["AmdEvent", "AmdParams", "Detector", "DetectorBank", "GreetingEnd", "Verdict"]
