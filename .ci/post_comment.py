#!/usr/bin/env python3
"""Post the gate's gate.md as one pull-request comment, edited on every push rather than added again (docs/ci.md).

    post_comment.py REPORT [--status N] [--pr N] [--title TEXT] [--marker TEXT] [--print]

REPORT is a Markdown file, or a folder: the newest gate.md under it (`bench ab` writes it into a new timestamped
folder under its --out; `bench compare` into the candidate's folder). A folder without one gives a body that says the
gate reached no verdict, so an earlier push's comment never stays up as if it were this push's.
--status is .ci/bench-gate's exit status (0 no row slower, 1 a row slower, anything else: not a verdict), shown in
the comment's first line. --print writes the body to standard output and posts nothing (the job summary).

The comment is found by a hidden marker (an HTML comment, invisible on GitHub) among the pull request's comments,
read page by page; it is edited (PATCH) when found and created (POST) otherwise. Read from the environment:
GITHUB_TOKEN, GITHUB_REPOSITORY (owner/name), GITHUB_API_URL (default https://api.github.com), GITHUB_EVENT_PATH
(the event's JSON: the pull request's number when --pr is not given), GITHUB_SERVER_URL and GITHUB_RUN_ID (the
link to the job). Standard library only: the workflow runs it before, or without, the project's environment.

Exit status: 0 posted (or printed), 1 the API refused or could not be reached, 2 bad input. Every failure is one
line on standard error.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

MARKER = "<!-- layerbench-gate -->"
LIMIT_CHARS = 65536  # GitHub refuses a comment body longer than this
TRUNCATED = "\n\n---\n*gate.md was cut here to fit a comment: the whole file is in the job's artifact.*\n"
TIMEOUT_S = 30.0
NEXT_PAGE = re.compile(r'<([^>]+)>;\s*rel="next"')
VERDICTS = {0: "no row slower", 1: "a row is slower"}
NO_REPORT = ("The gate wrote no gate.md: see the job log. (Against a stored baseline, the first run on a machine type "
             "stores its baseline and compares nothing.)\n")


class Failed(Exception):
    """One line for standard error, and the exit status."""

    def __init__(self, line: str, status: int):
        super().__init__(line)
        self.status = status


def find_report(path: Path) -> Path | None:
    """The file itself, or the newest gate.md under a folder (None when there is none)."""
    if path.is_file():
        return path
    found = [p for p in path.rglob("gate.md") if p.is_file()] if path.is_dir() else []
    return max(found, key=lambda p: (p.stat().st_mtime_ns, str(p))) if found else None


def compose(report: str | None, *, status: int | None, title: str, run_url: str, marker: str = MARKER) -> str:
    """The comment's body: the marker, one line naming the exit status and the job, then gate.md; cut to the limit."""
    if status is None:
        verdict = "the gate did not run"
    elif status == 0 and report is None:
        verdict = "exit 0, nothing compared"
    else:
        verdict = f"exit {status}, " + VERDICTS.get(status, "not a verdict on the code (bad input, or it could not "
                                                            "judge)")
    link = f" · [job log and artifact]({run_url})" if run_url else ""
    head = f"{marker}\n**{title}**: {verdict}{link}\n\n"
    text = report if report is not None else NO_REPORT
    if len(head) + len(text) > LIMIT_CHARS:
        text = text[:LIMIT_CHARS - len(head) - len(TRUNCATED)] + TRUNCATED
    return head + text


class Api:
    """The few REST calls the poster makes, against GITHUB_API_URL."""

    def __init__(self, base_url: str, token: str):
        self.base_url = base_url.rstrip("/")
        self.token = token

    def call(self, method: str, url: str, payload: dict | None = None) -> tuple[object, str]:
        """(the decoded JSON answer, the Link header); an HTTP or network error raises Failed."""
        if not url.startswith(("http://", "https://")):
            url = self.base_url + url
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Accept": "application/vnd.github+json", "Authorization": f"Bearer {self.token}",
            "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "layerbench-post-comment",
            **({"Content-Type": "application/json"} if data is not None else {})})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
                body = answer.read()
                return (json.loads(body) if body else None), answer.headers.get("Link", "")
        except urllib.error.HTTPError as exc:
            raise Failed(f"{method} {url}: HTTP {exc.code} {exc.reason}: {_message(exc)}" + _hint(exc.code), 1) \
                from None
        except (urllib.error.URLError, OSError) as exc:
            raise Failed(f"{method} {url}: cannot reach the API: {getattr(exc, 'reason', exc)}", 1) from None
        except ValueError:
            raise Failed(f"{method} {url}: the answer is not JSON", 1) from None

    def find(self, repo: str, pr: int, marker: str) -> dict | None:
        """The pull request's first comment holding marker, every page read (GitHub's Link header)."""
        url = f"/repos/{repo}/issues/{pr}/comments?per_page=100"
        while url:
            page, link = self.call("GET", url)
            for comment in page if isinstance(page, list) else []:
                if str(comment.get("body") or "").lstrip().startswith(marker):  # ours, not a quote of it
                    return comment
            found = NEXT_PAGE.search(link)
            url = found.group(1) if found else ""
        return None

    def post(self, repo: str, pr: int, body: str, marker: str) -> str:
        """Edit the marked comment, or create it; what was done, in a few words."""
        existing = self.find(repo, pr, marker)
        if existing is None:
            made, _ = self.call("POST", f"/repos/{repo}/issues/{pr}/comments", {"body": body})
            return f"created comment {made.get('id') if isinstance(made, dict) else '?'}"
        if existing.get("body") == body:
            return f"comment {existing['id']} already says this"
        self.call("PATCH", f"/repos/{repo}/issues/comments/{existing['id']}", {"body": body})
        return f"updated comment {existing['id']}"


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read() or b"{}").get("message") or "no message")
    except (ValueError, AttributeError, OSError):
        return "no message"


def _hint(code: int) -> str:
    if code in (401, 403):
        return (" (the token needs `permissions: pull-requests: write`; a pull request from a fork gets a read-only "
                "token: gate.md is then in the job summary and the artifact)")
    return ""


def pr_number(given: int | None) -> int:
    if given is not None:
        return given
    path = os.environ.get("GITHUB_EVENT_PATH", "")
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError) as exc:
        raise Failed(f"GITHUB_EVENT_PATH {path}: not a readable event JSON ({exc})", 2) from None
    number = (event.get("pull_request") or {}).get("number") or event.get("number")
    if not isinstance(number, int):
        raise Failed("no pull request number: give --pr N, or run on a pull_request event (GITHUB_EVENT_PATH)", 2)
    return number


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="post_comment.py", description=__doc__.split("\n\n")[0])
    p.add_argument("report", type=Path, help="gate.md, or a folder holding one (the newest is taken)")
    p.add_argument("--status", default="", help=".ci/bench-gate's exit status (empty: the gate did not run)")
    p.add_argument("--pr", type=int, default=None, help="the pull request's number (default: from GITHUB_EVENT_PATH)")
    p.add_argument("--title", default="layerbench gate", help="the comment's first words")
    p.add_argument("--marker", default=MARKER, help="the hidden text that finds the comment again")
    p.add_argument("--print", action="store_true", help="write the body to standard output, post nothing")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        status = int(args.status) if args.status.strip() else None
    except ValueError:
        print(f"post_comment.py: --status {args.status!r}: expected an exit status (a number)", file=sys.stderr)
        return 2
    env = os.environ
    run_url = (f"{env['GITHUB_SERVER_URL']}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
               if all(env.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")) else "")
    try:
        found = find_report(args.report)
        report = found.read_text(encoding="utf-8", errors="replace") if found else None
        body = compose(report, status=status, title=args.title, run_url=run_url, marker=args.marker)
        if args.print:
            print(body)
            return 0
        missing = [k for k in ("GITHUB_TOKEN", "GITHUB_REPOSITORY") if not env.get(k)]
        if missing:
            raise Failed(f"{' and '.join(missing)} not set: the workflow passes them (docs/ci.md)", 2)
        api = Api(env.get("GITHUB_API_URL") or "https://api.github.com", env["GITHUB_TOKEN"])
        pr = pr_number(args.pr)
        done = api.post(env["GITHUB_REPOSITORY"], pr, body, args.marker)
    except Failed as exc:
        print(f"post_comment.py: {exc}", file=sys.stderr)
        return exc.status
    except OSError as exc:
        print(f"post_comment.py: {args.report}: cannot read ({exc.strerror or exc})", file=sys.stderr)
        return 2
    print(f"post_comment.py: {done} on {env['GITHUB_REPOSITORY']}#{pr}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
