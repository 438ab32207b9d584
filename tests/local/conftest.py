"""The local plane's components, each against moto served in this process."""

from tests.support.moto import fresh_moto, moto_account  # noqa: F401  (fixtures)
from tests.support.synth import synthesized  # noqa: F401  (fixture)

# A detached plane's stop saves its state (a commit of every service's pickled backend): with the suite's
# other workers building images beside it, one took over control.STOP_TIMEOUT_S (60 s) once in CI. The daemon
# writes its threads' stacks to plane.log when a stop passes 30 s (headrace/local/daemon.py), so a real hang
# still shows where it is; these tests give the save the time a loaded machine needs.
LOADED_STOP_S = 180.0
