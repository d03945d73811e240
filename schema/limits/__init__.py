"""Document limits measured in linear time, and the cost budget (decisions 0020, 0021)."""

from schema.limits.config import Budgets, QueryLimits, SharedBudget
from schema.limits.extension import DocumentLimits, LimitsState

__all__ = ["Budgets", "DocumentLimits", "LimitsState", "QueryLimits", "SharedBudget"]
