"""Running a plan: the session shared by ``harness run`` and the pytest plugin (``session``),
one case from preparation to record (``case``), the local worker executor (``local``) and
what the user sees meanwhile (``progress``)."""
