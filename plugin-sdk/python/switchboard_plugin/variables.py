"""The app's variables: the ``[apps.NAME.variables]`` table of the host's configuration.

::

    url = switchboard_plugin.variables.get("auth_url")   # str, or None if the app has no such variable
"""

from __future__ import annotations


from wit_world.imports import variables as _raw


def get(name: str) -> str | None:
    """The value of variable ``name``, or ``None`` if the app has no such variable."""
    return _raw.get(name)
