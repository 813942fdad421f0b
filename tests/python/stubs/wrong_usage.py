"""Misuse the stubs must catch: each line marked `# error: CODE` must be
reported by `mypy --strict` with that error code (check_types.py), so the
stubs are known to be checked, not skipped. Never run."""

import memd

c = memd.connect(pool=3)  # error: arg-type
buf = c.allocate("1 MiB")  # error: arg-type
buf.handle = 5  # error: misc
c.send("frames", [b"bytes"])  # error: list-item
bufs, meta = c.receive("frames")
meta.decode(1)  # error: arg-type
c.no_such_call()  # error: attr-defined
memd.__version__ + 1  # error: operator
