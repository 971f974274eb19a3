# The socket-lab node: a base image (from Dockerfile, or the offline build) plus the lab's
# standard-library-only programs. The same layer is added whichever way the base was made.
ARG BASE
FROM ${BASE}
COPY lab /opt/socket-lab/lab
# Compiled once here, so that nodes never write bytecode next to the programs.
RUN python3 -m compileall -q /opt/socket-lab/lab
ENV PYTHONPATH=/opt/socket-lab \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/socket-lab
CMD ["sleep", "infinity"]
