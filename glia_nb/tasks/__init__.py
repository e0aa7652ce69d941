"""What is researched: tasks, their objective, budget, layers and texts.

The one place for each concept: :class:`Objective` says which score is better,
:data:`~glia_nb.tasks.layers.LAYERS` names the layers, :data:`TASKS` holds the registry.
This package depends on ``sim_core`` and ``workloads`` only.
"""
from glia_nb.tasks.describe import (GS_LOG_COLUMNS, REQS_LOG_COLUMNS, REQUESTS_COLUMNS,
                                    describe_view, view_members)
from glia_nb.tasks.layers import DEFAULT_ROUTER_RULES, LAYERS
from glia_nb.tasks.objective import Objective
from glia_nb.tasks.registry import TASKS, UnknownTaskError, get_task
from glia_nb.tasks.budget import Budget, BudgetTracker
from glia_nb.tasks.task import Task

__all__ = ["Task", "Objective", "Budget", "BudgetTracker", "TASKS", "get_task", "UnknownTaskError", "LAYERS",
           "describe_view", "view_members", "REQUESTS_COLUMNS",
           "GS_LOG_COLUMNS", "REQS_LOG_COLUMNS", "DEFAULT_ROUTER_RULES"]
