"""The scheduler and the auto-scaler, as the settings tune them."""

from __future__ import annotations

from collections.abc import Callable

from vault_bmad.config import Settings
from vault_bmad.engine.autoscale import AutoScaler
from vault_bmad.engine.health import HealthMonitor
from vault_bmad.engine.scheduler import Scheduler


def tuned_scheduler(settings: Settings, clock: Callable[[], float]) -> Scheduler:
    """A scheduler with no agents yet, its health monitor and defaults from `settings`."""
    return Scheduler(
        (),
        max_concurrent_agents=settings.max_concurrent_agents,
        strategy=settings.strategy,
        aging_step=settings.aging_step_s,
        default_timeout=settings.task_timeout_s,
        default_retries=settings.retries,
        backoff_base=settings.backoff_base_s,
        backoff_max=settings.backoff_max_s,
        health=HealthMonitor(
            threshold=settings.health_threshold,
            cooldown=settings.health_cooldown_s,
            clock=clock,
        ),
        clock=clock,
    )


def tuned_autoscaler(settings: Settings, clock: Callable[[], float]) -> AutoScaler:
    """An auto-scaler starting at the most workers `settings` allow."""
    return AutoScaler(
        min_workers=settings.min_workers,
        max_workers=settings.max_workers,
        initial=settings.max_workers,
        scale_up_at=settings.scale_up_utilization,
        scale_down_at=settings.scale_down_utilization,
        clock=clock,
    )
