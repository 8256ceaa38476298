"""The site's static assets: the Vega libraries, the chart templates, the page code.

The Vega, Vega-Lite and Vega-Embed JavaScript comes from ``vl-convert-python``
(``vl_convert.javascript_bundle``: one self-contained script, no network), the
chart templates from Altair (``bench.site.charts``). Both are slow to make and
depend only on package versions (and the template code), so each is kept in
the bench cache (``$BENCH_CACHE_DIR/site``) under a name that carries those
versions; a build with both cached imports neither package.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from bench.data import cache_root
from bench.errors import BenchError
from bench.fsutil import atomic_write_text

STATIC = ("site.js", "site.css")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        raise BenchError(f"`bench site` needs {package}: pip install 'pricer-bench[site]'") \
            from None


def _cache_dir() -> Path:
    return cache_root() / "site"


def _charts_source() -> str:
    """What the templates are made from: their code and the kinds' colours."""
    return "".join(resources.files(package).joinpath(name).read_text(encoding="utf-8")
                   for package, name in (("bench.site", "charts.py"), ("bench", "kinds.py")))


def chart_specs() -> dict[str, Any]:
    """The Vega-Lite templates, from the cache or drawn up by Altair."""
    key = hashlib.sha256(_charts_source().encode()).hexdigest()[:12]
    path = _cache_dir() / f"specs-altair{_version('altair')}-{key}.json"
    if path.exists():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            pass  # a damaged cache entry is drawn up again
    from bench.site import charts

    specs = charts.specs()
    atomic_write_text(path, json.dumps(specs, sort_keys=True))
    return specs


def vega_bundle(specs: dict[str, Any]) -> str:
    """The Vega + Vega-Lite + Vega-Embed script for the specs' Vega-Lite version."""
    schema = str(next(iter(specs.values())).get("$schema", ""))
    wanted = schema.rsplit("/v", 1)[-1].removesuffix(".json")  # "6.4.1"
    vl = ".".join(wanted.split(".")[:2])
    path = _cache_dir() / f"vega-vlconvert{_version('vl-convert-python')}-vl{vl}.js"
    if path.exists():
        return path.read_text(encoding="utf-8")
    import vl_convert

    known = vl_convert.get_vegalite_versions()
    if vl not in known:
        raise BenchError(f"vl-convert-python {_version('vl-convert-python')} has no Vega-Lite "
                         f"{vl} (has {', '.join(known)}): upgrade it")
    header = (f"/* Vega {vl_convert.get_vega_version()}, Vega-Lite {vl}, Vega-Embed "
              f"{vl_convert.get_vega_embed_version()}: bundled by vl-convert-python "
              f"{_version('vl-convert-python')} (BSD-3-Clause licences) */\n")
    bundle = header + vl_convert.javascript_bundle(vl_version=vl)
    atomic_write_text(path, bundle)
    return bundle


def static(name: str) -> str:
    """One of the site's own files (``site.js``, ``site.css``)."""
    return resources.files("bench.site").joinpath("static", name).read_text(encoding="utf-8")
