"""What a run left behind: a results folder read as typed records, and the analysis of its
captures and snapshots."""
