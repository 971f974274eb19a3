"""Running a lab: backends, the session that owns a run, evidence collection and the run flow."""
