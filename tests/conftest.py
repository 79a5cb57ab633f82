import os

# Tests run on two cores next to each other: keep each process's math libraries to one thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")
