"""Run the slimops CLI from a worktree of 1143c08 (``git worktree add /tmp/g/old 1143c08``, its ``_C`` built
with CMake into /tmp/g/old/python/slimops/), bypassing the editable install's finder: the "old" runs."""
import sys
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "ScikitBuildRedirectingFinder"]
sys.path.insert(0, "/tmp/g/old/python")
import slimops
assert slimops.__file__.startswith("/tmp/g/old"), slimops.__file__
from slimops.__main__ import main
sys.argv = ["slimops"] + sys.argv[1:]
sys.exit(main())
