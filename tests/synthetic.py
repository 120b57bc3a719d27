"""Synthetic results documents in the real schema, for the report's tests, benchmark and previews.

Shared by the unit tests, the browser test and the report benchmark.
Latency fields come from ``harness.stats.summarize`` over generated samples whose median is
exactly the requested p50, so tables computed from them have exact expected values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness import stats
from harness.results import Run
from harness.results.upgrade import upgrade

PROVIDERS = {"cpu": "CPUExecutionProvider", "openvino": "OpenVINOExecutionProvider",
             "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
             "directml": "DmlExecutionProvider"}


def case_id(model: str, variant: str, target: str, params: dict[str, Any]) -> str:
    return "/".join([model, variant, target, *(f"{k}={v}" for k, v in params.items())])


def _params(batch: int, streams: int) -> dict[str, int]:
    return {"batch": batch} if streams == 1 else {"batch": batch, "streams": streams}


def _base(model: str, variant: str, target: str, batch: int, streams: int, status: str,
          reason: str | None, price_per_hour: float | None) -> dict[str, Any]:
    params = _params(batch, streams)
    record: dict[str, Any] = {
        "case_id": case_id(model, variant, target, params), "model": model, "variant": variant,
        "variant_kind": variant, "target": target, "params": params, "status": status, "reason": reason,
        "runtime": {"package": "onnxruntime-openvino" if target.startswith("openvino") else "onnxruntime",
                    "providers_requested": [PROVIDERS.get(target, f"{target}ExecutionProvider")],
                    "onnxruntime_version": "1.32.0"}}
    if price_per_hour is not None:
        record["price_per_hour"] = price_per_hour
    return record


def failed_case(model: str, variant: str, target: str, reason: str, *, status: str = "failed", batch: int = 1,
                streams: int = 1, price_per_hour: float | None = None) -> dict[str, Any]:
    return _base(model, variant, target, batch, streams, status, reason, price_per_hour)


def ok_case(model: str, variant: str, target: str, *, p50: float, batch: int = 1, streams: int = 1,
            samples_per_s: float | None = None, cosine: float | None = None, verdict: str | None = None,
            unstable: Sequence[str] = (), fallback: tuple[int, int] | None = None, price_per_hour: float | None = None,
            n_samples: int = 201, spread: float = 0.02, sigma: float = 0.05, peak_rss: float = 200.0,
            session_create: float = 50.0, first_inference: float | None = None, seed: int = 0) -> dict[str, Any]:
    """An ok case whose latency_ms.p50 is exactly ``p50`` (n_samples odd: the median is a sample)."""
    if n_samples % 2 == 0:
        raise ValueError("n_samples must be odd so that the median is exactly one sample")
    rng = np.random.default_rng(seed)
    tail = (rng.random(n_samples) < 0.02) * rng.exponential(1.0, n_samples)  # a few slow outliers, as in real runs
    noise = np.exp(rng.normal(0.0, sigma, n_samples)) * (1.0 + tail)
    samples = np.round(p50 * noise / np.median(noise), 6)
    samples[np.argsort(noise)[n_samples // 2]] = p50  # rounding keeps the order: the median is exactly p50
    summary = stats.summarize(samples.tolist())
    medians = [p50 * (1 + spread * (k / 4 - 0.5)) for k in range(5)]  # five processes, p50 in the middle
    provider = PROVIDERS.get(target, f"{target}ExecutionProvider")
    on_requested, total = fallback or (40, 40)
    record = _base(model, variant, target, batch, streams, "ok", None, price_per_hour)
    record["runtime"]["providers_assigned"] = [provider] if target == "cpu" else [provider, "CPUExecutionProvider"]
    sps = samples_per_s if samples_per_s is not None else batch * streams * 1000.0 / p50
    record.update(
        latency_ms=summary,
        throughput={"inferences_per_s": sps / batch, "samples_per_s": sps, "streams": streams, "batch": batch,
                    "wall_s": 2.0},
        memory_mb={"peak_rss": peak_rss, "rss_start": 30.0, "rss_after_session": peak_rss * 0.7,
                   "rss_after_warmup": peak_rss * 0.8, "rss_end": peak_rss * 0.8, "arena": True},
        timings_ms={"session_create": session_create,
                    "first_inference": first_inference if first_inference is not None else p50 * 4,
                    "import_onnxruntime": 20.0, "session_create_median": session_create,
                    "first_inference_median": first_inference if first_inference is not None else p50 * 4},
        measurement={"iterations": n_samples, "stop_reason": "minimums", "minimums_met": True, "precision": None,
                     "precision_met": None, "median_ci_reached": True, "repeats": 5, "repeat_medians_ms": medians,
                     "repeat_spread": stats.repeat_spread(medians), "unstable": list(unstable)},
        placement={"nodes": {provider: on_requested, **({"CPUExecutionProvider": total - on_requested}
                                                         if total > on_requested else {})},
                   "total": total, "on_requested": on_requested, "fraction_on_requested": on_requested / total,
                   "partial_fallback": on_requested < total},
        samples_ms=samples.tolist(),
    )
    if cosine is not None:
        record["accuracy"] = {"cosine": cosine, "max_abs": (1 - cosine) * 50, "mean_abs": (1 - cosine) * 5,
                              "rel_l2": (1 - cosine) ** 0.5, "top1": 1.0 if cosine > 0.99 else 0.9,
                              "verdict": verdict or "pass",
                              "problems": [f"cosine {cosine:.4f} < 0.99"] if verdict == "fail" else []}
    return record


def document(cases: list[dict[str, Any]], *, hostname: str = "host-a", cpu_model: str = "Intel Xeon Platinum 8480+",
             suite: str = "synthetic", started_at: str = "2026-01-05T10:00:00Z",
             finished_at: str = "2026-01-05T10:30:00Z", memory_gb: float = 64.0) -> dict[str, Any]:
    """A results document as version 1 wrote it (one JSON object); ``runs`` makes it typed."""
    fingerprint = hashlib.sha256(f"{hostname}|{cpu_model}".encode()).hexdigest()[:16]
    return ({
        "schema_version": 1,
        "run_id": f"{suite}-{started_at.replace(':', '').replace('-', '')}-{fingerprint[:6]}",
        "started_at": started_at, "finished_at": finished_at, "status": "complete",
        "suite": {"name": suite, "path": f"suites/{suite}.yaml",
                  "sha256": hashlib.sha256(suite.encode()).hexdigest()},
        "environment": {"hostname": hostname, "os": "Linux 6.8.0", "machine": "x86_64", "cpu_model": cpu_model,
                        "cpu_flags": ["avx2", "avx512f", "avx512_vnni", "amx_tile"], "cpu_count_logical": 32,
                        "cpu_count_physical": 16, "memory_gb": memory_gb, "python": "3.11.7",
                        "harness_version": "0.1.0", "onnxruntime_version": "1.32.0", "gpus": [],
                        "fingerprint": fingerprint},
        "settings": {"measure": {"repeats": 2}}, "cases": cases,
    })


def runs(*documents: dict[str, Any]) -> list[Run]:
    """Typed runs from synthetic documents, through the same v1 -> v2 upgrade as an old results
    file (which computes each case's notes)."""
    return [Run.from_json(upgrade(d)) for d in documents]


# The study's story, as p50 multipliers: openvino helps more on host-a, int8 helps more on host-a,
# fp16 slows the CPU provider down, and yolov8n on openvino is a near tie between the machines
# (the report must call it "too close").
STUDY_MODELS = {"resnet50": 9.0, "bert-base": 14.0, "yolov8n": 6.0}  # fp32 cpu p50 at batch 1 on host-a, ms
STUDY_TARGETS = {("resnet50", "host-a"): {"cpu": 1.0, "openvino": 0.52},
                 ("resnet50", "host-b"): {"cpu": 0.85, "openvino": 0.71},
                 ("bert-base", "host-a"): {"cpu": 1.0, "openvino": 0.48},
                 ("bert-base", "host-b"): {"cpu": 0.8, "openvino": 0.66},
                 ("yolov8n", "host-a"): {"cpu": 1.0, "openvino": 0.62},
                 ("yolov8n", "host-b"): {"cpu": 0.83, "openvino": 0.604}}
STUDY_VARIANTS = {"host-a": {"fp32": 1.0, "fp16": 0.9, "int8": 0.42},
                  "host-b": {"fp32": 1.0, "fp16": 0.93, "int8": 0.55}}
STUDY_COSINE = {"fp32": None, "fp16": 0.99999, "int8": 0.998}
STUDY_MACHINES = [("host-a", "Intel Xeon Platinum 8480+", 1.20, "2026-01-05T10:00:00Z", "2026-01-05T10:41:00Z"),
                  ("host-b", "AMD EPYC 9654", 0.95, "2026-01-06T09:12:00Z", "2026-01-06T09:50:00Z")]


def _study_case(host: str, model: str, variant: str, target: str, batch: int, streams: int, price: float,
                seed: int) -> dict[str, Any]:
    if (model, variant, target, host) == ("yolov8n", "int8", "openvino", "host-b"):
        return failed_case(model, variant, target, batch=batch, streams=streams,
                           reason="worker crashed: SIGSEGV in OpenVINO compile_model (exit -11)")
    slow_fp16 = 1.2 if (variant, target) == ("fp16", "cpu") else 1.0
    p50 = round(STUDY_MODELS[model] * STUDY_TARGETS[(model, host)][target] * STUDY_VARIANTS[host][variant]
                * slow_fp16 * batch ** 0.8 * streams ** 0.6, 4)
    cosine = STUDY_COSINE[variant] if variant != "fp32" else (1.0 if target != "cpu" else None)
    verdict = "fail" if (model, variant) == ("yolov8n", "int8") else None
    unstable = ["repeat spread 18.0% > 10%"] if (model, variant, target, batch, host) == (
        "resnet50", "fp16", "cpu", 8, "host-a") else []
    fallback = (118, 131) if (model, variant, target) == ("bert-base", "int8", "openvino") else None
    base = STUDY_MODELS[model]
    return ok_case(model, variant, target, p50=p50, batch=batch, streams=streams,
                   cosine=0.972 if verdict else cosine, verdict=verdict, unstable=unstable, fallback=fallback,
                   price_per_hour=price, n_samples=1501, seed=seed, spread=0.18 if unstable else 0.015,
                   sigma=0.06 if target == "cpu" else 0.04,
                   peak_rss=base * 30 * (0.5 if variant == "int8" else 1) + 60 * batch ** 0.5
                   + (150 if target == "openvino" else 0),
                   session_create=base * (60 if target == "openvino" else 12))


def study_documents() -> list[dict[str, Any]]:
    """A small hardware-selection study: 3 models, 2 machines, failures, flags, accuracy, prices."""
    documents = []
    for host, cpu, price, started, finished in STUDY_MACHINES:
        cases = []
        for model in STUDY_MODELS:
            grid = [(variant, target, batch, streams) for variant in STUDY_COSINE
                    for target in STUDY_TARGETS[(model, host)] for batch in (1, 8)
                    for streams in ((1, 4) if model == "bert-base" and batch == 1 else (1,))]
            cases += [_study_case(host, model, *point, price=price, seed=len(documents) * 1000 + len(cases) + i)
                      for i, point in enumerate(grid)]
            cases.append(failed_case(model, "fp32", "cuda", status="unavailable",
                                     reason="CUDAExecutionProvider requested but the session got only "
                                            "CPUExecutionProvider (libcudart.so.12: cannot open shared object file)"))
        documents.append(document(cases, hostname=host, cpu_model=cpu, suite="cpu-study", started_at=started,
                                  finished_at=finished))
    return documents


def large_document(n_cases: int = 2000, samples_per_case: int = 1001, seed: int = 0) -> dict[str, Any]:
    """A big run (20 models x 5 variants x 5 targets x 4 batch sizes = 2,000 cases) for the benchmark."""
    rng = np.random.default_rng(seed)
    variants = ["fp32", "fp16", "bf16", "int8-dynamic", "int8-static"]
    targets = ["cpu", "openvino", "cuda", "tensorrt", "directml"]
    batches = [1, 2, 4, 8]
    per_model = len(variants) * len(targets) * len(batches)
    cases: list[dict[str, Any]] = []
    for index in range(n_cases):
        model = f"model-{index // per_model:02d}"
        variant = variants[(index // (len(targets) * len(batches))) % len(variants)]
        target = targets[(index // len(batches)) % len(targets)]
        batch = batches[index % len(batches)]
        if rng.random() < 0.03:
            cases.append(failed_case(model, variant, target, batch=batch, status="unavailable",
                                     reason=f"{PROVIDERS[target]} not available on this machine"))
            continue
        p50 = float(round(rng.uniform(0.5, 20.0) * batch ** 0.7, 4))
        cosine = None if variant == "fp32" and target == "cpu" else float(1 - 10 ** rng.uniform(-7, -2))
        cases.append(ok_case(model, variant, target, p50=p50, batch=batch, cosine=cosine, n_samples=samples_per_case,
                             seed=index, price_per_hour=float(rng.choice([0.5, 1.2, 3.0])),
                             unstable=["cv 14% > 10%"] if rng.random() < 0.02 else []))
    return document(cases, suite="large")
