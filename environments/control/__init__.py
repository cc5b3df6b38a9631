"""Classic-control meta-envs (MIME's meta-pendulum), batched in torch."""
from environments.control import pendulum  # noqa: F401
