"""Jobs, schedules, sensors and the Definitions of the recflow code location."""
