"""The history site's pages: four HTML shells, the stylesheet and the script (package data in site_assets/,
no network: nothing is loaded from outside the site's folder). Each page loads the data files it needs
(bench.report.site) with <script src>, which works from file:// as well as from a web server."""
from __future__ import annotations

import html
from importlib import resources

ASSETS = "site_assets"
STYLESHEET = "site.css"  # shared with report.html (bench.report.render), which inlines it
PAGES = {  # file -> (title, data scripts it loads before site.js)
    "index.html": ("Overview", ("data/index.js",)),
    "regressions.html": ("Regressions", ("data/index.js", "data/changes.js")),
    "row.html": ("Row", ("data/index.js", "data/changes.js", "data/runs.js")),
    "machines.html": ("Machines", ("data/index.js",)),
}
NAV = (("index.html", "Overview"), ("regressions.html", "Regressions"), ("machines.html", "Machines"))


def asset(name: str) -> str:
    """A file of site_assets/ as text."""
    return resources.files("bench.report").joinpath(ASSETS, name).read_text(encoding="utf-8")


def page(name: str, *, report_link: str = "") -> str:
    """The HTML of one page: its navigation, an empty <main> that site.js fills, and its scripts."""
    title, scripts = PAGES[name]
    nav = "".join(f'<a href="{href}"{" class=here" if href == name else ""}>{label}</a>' for href, label in NAV)
    if report_link:
        nav += f'<a href="{html.escape(report_link)}">Latest run report</a>'
    tags = "".join(f'<script src="{s}"></script>' for s in (*scripts, "site.js"))
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>layerbench history: {title}</title><link rel="stylesheet" href="{STYLESHEET}">'
            f'<link rel="icon" href="data:,"></head>'
            f'<body data-page="{name.removesuffix(".html")}"><header><b>layerbench history</b><nav>{nav}</nav>'
            f'<span id="store" class="note"></span></header><main id="main"><p class="note">Loading...</p>'
            f'<noscript>These pages need JavaScript (nothing is fetched from the network).</noscript></main>'
            f'{tags}</body></html>\n')


def site_pages(*, report_link: str = "") -> dict[str, str]:
    """Every page, the stylesheet and the script (path under the site's folder -> text)."""
    files = {name: page(name, report_link=report_link) for name in PAGES}
    files[STYLESHEET] = asset(STYLESHEET)
    files["site.js"] = asset("site.js")
    return files
