"""Spec -> Plan: the backend-neutral description both targets consume."""

from mizzen.plan.compile import compile_plan, model_server_argv, secret_env_name
from mizzen.plan.model import Job, Mount, Pipeline, Plan, Process, Service, Step, Workload

__all__ = [
    "Job",
    "Mount",
    "Pipeline",
    "Plan",
    "Process",
    "Service",
    "Step",
    "Workload",
    "compile_plan",
    "model_server_argv",
    "secret_env_name",
]
