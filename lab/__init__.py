"""socket-lab: run the socket-programming course's programs on real networks.

Only the standard library may be imported here and under ``lab.programs``:
those files run inside containers and on remote hosts that have only python3.
"""

__version__ = "0.1.0"
