"""Plugin execution providers: EPs that ship as libraries and register at run time
(onnxruntime 1.23+: ``register_execution_provider_library``, ``get_ep_devices``,
``SessionOptions.add_provider_for_devices``), such as ``onnxruntime-ep-openvino`` on PyPI.

Honest-numbers rule as for built-in EPs: a plugin that claims none of this machine's devices,
or a session that does not land on it, is ``unavailable`` with the reason.
"""

from __future__ import annotations

import importlib
from typing import Any

_registered: dict[str, str] = {}  # provider -> library, per process
# Who a plugin's factory claims, where the vendor has said so in its source (a device it
# skips is simply absent from get_ep_devices(), with no message).
CLAIMS = {"OpenVINOExecutionProvider": "Intel devices only (vendor id 0x8086)",
          "WebGpuExecutionProvider": "GPUs with a WebGPU adapter"}


class PluginUnavailable(Exception):
    """The plugin cannot run here; the message is the reason shown to users."""


def register(ort: Any, provider: str, plugin: dict[str, Any]) -> str:
    """Register the plugin's library under the provider's name (once per process); its path."""
    if provider in _registered:
        return _registered[provider]
    if not hasattr(ort, "register_execution_provider_library"):
        raise PluginUnavailable(f"onnxruntime {ort.__version__} cannot load plugin execution providers "
                                "(1.23 or newer can); pin runtime.version to a newer onnxruntime")
    library = plugin.get("library")
    if not library:
        module_name = plugin.get("module") or str(plugin["package"]).replace("-", "_")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise PluginUnavailable(f"plugin module {module_name} does not import ({exc}); pip install "
                                    f"{plugin.get('package') or module_name} into this runtime") from None
        library = module.get_library_path()
    try:
        ort.register_execution_provider_library(provider, str(library))
    except Exception as exc:
        raise PluginUnavailable(f"registering {library} failed: {' '.join(str(exc).split())[:300]}") from None
    _registered[provider] = str(library)
    return str(library)


def devices(ort: Any, provider: str, plugin: dict[str, Any]) -> list[Any]:
    """The plugin's devices on this machine, of the asked type (cpu, gpu, npu) if one is named."""
    register(ort, provider, plugin)
    every = list(ort.get_ep_devices())
    mine = [d for d in every if d.ep_name == provider]
    wanted = str(plugin.get("device") or "").upper()
    chosen = [d for d in mine if not wanted or d.device.type.name == wanted]
    if chosen:
        return chosen
    machine = ", ".join(sorted({f"{d.device.type.name} {d.device.vendor or '?'} (vendor id {d.device.vendor_id:#06x})"
                                for d in every})) or "none"
    if mine:
        offered = ", ".join(sorted({d.device.type.name for d in mine}))
        raise PluginUnavailable(f"{provider} (plugin) offers {offered} here, not {wanted}")
    claims = CLAIMS.get(provider)
    why = f"; it claims {claims}" if claims else ""
    raise PluginUnavailable(f"{provider} (plugin {plugin.get('package') or plugin.get('library')}) registered, "
                            f"but claims none of this machine's devices ({machine}){why}")


def describe(device: Any) -> dict[str, Any]:
    return {"ep": device.ep_name, "ep_vendor": device.ep_vendor, "type": device.device.type.name,
            "vendor": device.device.vendor, "vendor_id": f"{device.device.vendor_id:#06x}",
            "device_id": f"{device.device.device_id:#06x}", "ep_metadata": dict(device.ep_metadata)}
