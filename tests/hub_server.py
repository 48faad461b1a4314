"""A loopback Hugging Face Hub for tests: the endpoints huggingface_hub 2.x uses to create repos, upload
(preupload answers "regular", so files come inline, base64, in the NDJSON commit body), read repo info and
file trees, and download files (`/{repo}/resolve/{rev}/{path}` with ETag / X-Repo-Commit / Content-Length).

Auth: `tokens` maps a token to the namespaces it may write (and read privately). Failure knobs:
`fail_commit` (an HTTP status the commit answers with; the client retries 5xx for ~30 s) and
`drop_on_commit` (paths a commit silently loses). Every request is recorded
in `requests` (method, path, Authorization header) for assertions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml


@dataclass
class Repo:
    private: bool
    commits: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)  # (sha, snapshot) oldest first

    @property
    def sha(self) -> str:
        return self.commits[-1][0]

    def snapshot(self, revision: str) -> dict[str, bytes] | None:
        if revision == "main":
            return self.commits[-1][1]
        return next((files for sha, files in self.commits if sha == revision), None)


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


class HubServer:
    """Start with `HubServer(tokens={...}).start()`; `.endpoint` is its URL; `.stop()` shuts it down."""

    def __init__(self, tokens: dict[str, set[str]]):
        self.tokens = tokens
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.fail_commit: int | None = None
        self.drop_on_commit: set[str] = set()
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"hub": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> HubServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def new_commit(self, repo: Repo, files: dict[str, bytes]) -> str:
        sha = _sha1(f"{len(repo.commits)}:{sorted(files)}".encode() + b"".join(files.values()))
        repo.commits.append((sha, files))
        return sha


def dead_endpoint() -> str:
    """URL of a loopback port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer

    def log_message(self, format, *args):  # quiet
        pass

    # -- helpers ----------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes | dict | list = b"", headers: dict | None = None, head=False) -> None:
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, code: str | None, message: str, head=False) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, {"error": message}, headers, head=head)

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[len("Bearer "):] if auth.startswith("Bearer ") else None

    def _can_write(self, repo_id: str) -> bool:
        return repo_id.split("/")[0] in self.hub.tokens.get(self._token() or "", set())

    def _readable(self, repo_id: str, head=False) -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self._can_write(repo_id)):
            self._error(401, "RepoNotFound", "Repository not found", head=head)
            return None
        return repo

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _record(self) -> tuple[str, dict]:
        url = urlsplit(self.path)
        self.hub.requests.append((self.command, url.path, self.headers.get("Authorization")))
        return unquote(url.path), parse_qs(url.query)

    # -- routes -----------------------------------------------------------------------------------
    def do_POST(self):
        path, _ = self._record()
        body = self._body()
        parts = path.strip("/").split("/")
        with self.hub.lock:
            if path == "/api/repos/create":
                return self._create(json.loads(body))
            if path == "/api/validate-yaml":
                try:
                    yaml.safe_load(json.loads(body)["content"].split("---")[1])
                except Exception as exc:
                    return self._send(400, {"errors": [{"message": str(exc)}], "warnings": []})
                return self._send(200, {"errors": [], "warnings": []})
            if len(parts) == 6 and parts[:2] == ["api", "models"] and parts[4] in ("preupload", "commit"):
                repo_id = f"{parts[2]}/{parts[3]}"
                if repo_id not in self.hub.repos:
                    return self._error(404, "RepoNotFound", "Repository not found")
                if not self._can_write(repo_id):
                    return self._error(403, None, f"You don't have the rights to write to {repo_id}")
                if parts[4] == "preupload":
                    files = json.loads(body)["files"]
                    modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                             for f in files]
                    return self._send(200, {"files": modes})
                return self._commit(repo_id, body)
        self._error(404, None, f"Unknown endpoint POST {path}")

    def _create(self, payload: dict) -> None:
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else None
        if repo_id is None:
            return self._error(400, None, "This test hub needs an organization in the repo id")
        if self._token() not in self.hub.tokens:
            return self._error(401, None, "Invalid credentials in Authorization header")
        if not self._can_write(repo_id):
            return self._error(403, None, f"You don't have the rights to create a model under the namespace "
                                          f"\"{payload['organization']}\"")
        if repo_id in self.hub.repos:
            return self._error(409, None, "You already created this model repo")
        repo = Repo(private=payload.get("visibility", "public") != "public" or bool(payload.get("private")))
        self.hub.new_commit(repo, {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"})
        self.hub.repos[repo_id] = repo
        self._send(200, {"url": f"{self.hub.endpoint}/{repo_id}", "name": repo_id})

    def _commit(self, repo_id: str, body: bytes) -> None:
        if self.hub.fail_commit:
            return self._error(self.hub.fail_commit, None, "Commit rejected by the test hub")
        repo = self.hub.repos[repo_id]
        files = dict(repo.commits[-1][1])
        for line in body.splitlines():
            item = json.loads(line)
            if item["key"] == "file" and item["value"]["path"] not in self.hub.drop_on_commit:
                assert item["value"]["encoding"] == "base64"
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] == "deletedFile":
                files.pop(item["value"]["path"], None)
            elif item["key"] == "lfsFile":
                return self._error(400, None, "This test hub only takes regular (inline) files")
        sha = self.hub.new_commit(repo, files)
        self._send(200, {"success": True, "commitOid": sha, "commitUrl": f"{self.hub.endpoint}/{repo_id}/commit/{sha}",
                         "pullRequestUrl": None})

    def do_HEAD(self):
        self._get(head=True)

    def do_GET(self):
        self._get(head=False)

    def _get(self, head: bool) -> None:
        path, query = self._record()
        parts = path.strip("/").split("/")
        with self.hub.lock:
            if len(parts) >= 5 and parts[2] == "resolve":  # /{org}/{name}/resolve/{rev}/{path}
                return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), head)
            if len(parts) >= 4 and parts[:2] == ["api", "models"]:
                repo_id = f"{parts[2]}/{parts[3]}"
                repo = self._readable(repo_id, head)
                if repo is None:
                    return
                rest = parts[4:]
                if not rest or rest[0] == "revision":
                    return self._info(repo_id, repo, rest[1] if rest else "main")
                if rest[0] == "tree" and len(rest) >= 2:
                    return self._tree(repo, rest[1], "/".join(rest[2:]), query)
        self._error(404, None, f"Unknown endpoint GET {path}", head=head)

    def _info(self, repo_id: str, repo: Repo, revision: str) -> None:
        files = repo.snapshot(revision)
        if files is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        self._send(200, {"id": repo_id, "modelId": repo_id, "sha": repo.sha, "private": repo.private,
                         "siblings": [{"rfilename": p} for p in sorted(files)], "tags": []})

    def _tree(self, repo: Repo, revision: str, prefix: str, query: dict) -> None:
        files = repo.snapshot(revision)
        if files is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        recursive = query.get("recursive", ["False"])[0].lower() == "true"
        base = prefix.rstrip("/") + "/" if prefix else ""
        entries, folders = [], set()
        for p in sorted(files):
            if not p.startswith(base):
                continue
            rel = p[len(base):]
            if "/" in rel and not recursive:
                folders.add(base + rel.split("/")[0])
                continue
            entries.append({"type": "file", "path": p, "size": len(files[p]), "oid": _sha1(files[p])})
        if base and not entries and not folders:
            return self._error(404, "EntryNotFound", f"{prefix} does not exist on main")
        entries += [{"type": "directory", "path": f, "oid": _sha1(f.encode())} for f in sorted(folders)]
        self._send(200, entries)

    def _resolve(self, repo_id: str, revision: str, filename: str, head: bool) -> None:
        repo = self._readable(repo_id, head)
        if repo is None:
            return
        files = repo.snapshot(revision)
        if files is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head=head)
        if filename not in files:
            return self._error(404, "EntryNotFound", f"{filename} does not exist on {revision}", head=head)
        data = files[filename]
        sha = repo.sha if revision == "main" else revision
        self._send(200, data, {"ETag": f'"{_sha1(data)}"', "X-Repo-Commit": sha, "Content-Length": len(data),
                               "Content-Type": "application/octet-stream"}, head=head)
