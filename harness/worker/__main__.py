"""``<runtime python> -m harness.worker CASE.json RESULT.json`` (and ``--probe PROVIDER OPTIONS``)."""

from __future__ import annotations

import json
import os
import sys
import traceback

from .measure import measure
from .session import first_line, provider_problem


def probe_main(provider: str, options_json: str, plugin_json: str = "null") -> int:
    """``--probe PROVIDER OPTIONS [PLUGIN]``: can this runtime run the provider at all? (harness doctor)"""
    import onnxruntime as ort

    problem = provider_problem(ort, {"provider": provider, "provider_options": json.loads(options_json),
                                     "plugin": json.loads(plugin_json)})
    print(json.dumps({"onnxruntime_version": ort.__version__, "available": problem is None,
                      "reason": problem[1] if problem else None}))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) in (4, 5) and argv[1] == "--probe":
        return probe_main(*argv[2:])
    if len(argv) != 3:
        print("usage: python -m harness.worker CASE.json RESULT.json", file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        case = json.load(f)
    try:
        result = measure(case)
    except Exception as exc:
        traceback.print_exc()
        result = {"status": "failed", "reason": first_line(f"{type(exc).__name__}: {exc}")}
    tmp = argv[2] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
