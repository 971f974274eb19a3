"""``lab grade``: a submission run as the server of a standard lab, through its model's
claims and the hostile clients, scored. It sits after the verdict and the report in the
flow: it builds a topology in code, runs it, judges it with the checks, then scores."""
