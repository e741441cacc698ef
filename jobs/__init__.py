"""Jobs, schedules, sensors and the Definitions of the recflow code location."""

import recflow  # noqa: F401  (first: sets the OpenMP wait policy before torch loads)
