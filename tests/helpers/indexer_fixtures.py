"""Git repositories built inside the tests (real git, real commits with chosen dates)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# Planted secrets, one per kind the indexer must catch. None of these strings may appear in any output.
SECRETS = {
    "aws_access_key": "AKIAQWERTYUIOPASDFGH",
    "aws_secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKE",
    "gcp_api_key": "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    "azure_storage_key": "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmE9PQ==",
    "private_key_body": "MIIEowIBAAKCAQEAx4Uq1Lq0planted9Zq",
    "github_token": "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    "gitlab_token": "glpat-Zx9Yw8Vu7Ts6Rq5Po4Nm",
    "slack_token": "xoxb-123456789012-123456789012-AbCdEfGhIjKlMnOpQrStUvWx",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "password": "S3cr3tPassw0rd!",
    "api_key": "k-29f8a7c6b5d4e3f2",
    "high_entropy": "q8Zr3Lm5Np7Tx2Vb9Wc4Yd6Fg1Hj0Ks",
    "env_value": "envfilesecretvalue123",
    "email": "jane.doe@example.com",
}

SECRETS_PY = f'''"""Settings for the billing service."""

AWS_ACCESS_KEY_ID = "{SECRETS["aws_access_key"]}"
aws_secret_access_key = "{SECRETS["aws_secret_key"]}"
GOOGLE_MAPS = "{SECRETS["gcp_api_key"]}"
AZURE = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={SECRETS["azure_storage_key"]};EndpointSuffix=core.windows.net"
DEPLOY_KEY = """-----BEGIN RSA PRIVATE KEY-----
{SECRETS["private_key_body"]}
-----END RSA PRIVATE KEY-----"""
GH = "{SECRETS["github_token"]}"
GL = "{SECRETS["gitlab_token"]}"
SLACK = "{SECRETS["slack_token"]}"
SESSION = "{SECRETS["jwt"]}"
db_password = "{SECRETS["password"]}"
CONFIG = {{"api_key": "{SECRETS["api_key"]}"}}
signing_salt = "{SECRETS["high_entropy"]}"
OWNER = "{SECRETS["email"]}"


def connect(host, port=5432):
    """Open a connection to the billing database."""
    client = make_client(host, port, password=db_password)
    client.ping()
    return client
'''


def git(cwd: Path | str, *args: str, env: dict[str, str] | None = None) -> str:
    full_env = dict(os.environ)
    full_env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
                     "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com",
                     "HOME": str(Path(cwd).resolve()), "GIT_ALLOW_PROTOCOL": "file"})
    full_env.update(env or {})
    out = subprocess.run(["git", "-c", "protocol.file.allow=always", *args], cwd=str(cwd), capture_output=True,
                         env=full_env, check=True)
    return out.stdout.decode()


def init_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return path


def commit(repo: Path, files: dict[str, str | bytes | None], date: str, message: str = "change",
           renames: dict[str, str] | None = None) -> str:
    """Write (str/bytes) or delete (None) files, apply renames (old -> new), commit at ``date`` (ISO)."""
    for old, new in (renames or {}).items():
        (repo / new).parent.mkdir(parents=True, exist_ok=True)
        git(repo, "mv", old, new)
    for rel, content in files.items():
        p = repo / rel
        if content is None:
            git(repo, "rm", "-q", rel)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
        git(repo, "add", "-f", rel)
    env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    git(repo, "commit", "-q", "--allow-empty", "-m", message, env=env)
    return git(repo, "rev-parse", "HEAD").strip()


UTILS_PY_V1 = '''"""Small helpers."""


def clamp(value, low, high):
    """Limit a value to the range [low, high]."""
    if value < low:
        return low
    if value > high:
        return high
    return value
'''

UTILS_PY_V2 = UTILS_PY_V1 + '''

def mean(values):
    """Arithmetic mean of a non-empty list of numbers."""
    total = sum(values)
    count = len(values)
    return total / count
'''

UTILS_PY_V3 = UTILS_PY_V2 + '''

def median_of_sorted(values):
    """Middle element of an already sorted list of numbers."""
    middle_index = len(values) // 2
    return values[middle_index]
'''

SHAPES_TS = '''// Geometry helpers used by the editor canvas.

export interface Point {
  x: number;
  y: number;
}

/** Euclidean distance between two points. */
export function distance(a: Point, b: Point): number {
  const dx = a.x - b.x;
  const dy = a.y - b.y;
  return Math.sqrt(dx * dx + dy * dy);
}

/** Midpoint of the segment between two points. */
export const midpoint = (a: Point, b: Point): Point => ({ x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 });
'''

SERVER_GO = '''package server

import "net/http"

// Health reports whether the service is alive and ready to serve traffic.
func Health(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("ok"))
}
'''

PARSER_RS = '''/// Parses a comma-separated list of integers, skipping blanks.
pub fn parse_list(input: &str) -> Vec<i64> {
    input
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect()
}
'''

MINIFIED_JS = "var a=1;" + ";".join(f"function f{i}(x){{return x*{i}}}" for i in range(400)) + "\n"

GENERATED_PY = '''# Code generated by protoc-gen-py. DO NOT EDIT.
def serialize_message(msg):
    return msg.SerializeToString()
'''

VENDORED_JS = '''/** Left pad a string. */
function leftPad(str, len, ch) {
  return String(ch).repeat(len - str.length) + str;
}
'''


def near_duplicate_of(text: str) -> str:
    """The same file with one comment word changed (token 5-shingle Jaccard about 0.9)."""
    return text.replace("editor canvas", "editor preview")


def build_company_repo(root: Path) -> dict[str, str]:
    """A repo with 6 commits over several languages, secrets, vendored/generated/minified files,
    a near-duplicate file and a rename. Returns the commit shas by name."""
    repo = init_repo(root)
    shas = {}
    shas["c1"] = commit(repo, {
        "src/utils.py": UTILS_PY_V1,
        "web/shapes.ts": SHAPES_TS,
        ".gitignore": "build/\n*.log\n",
        ".copilotignore": "secret_stuff/\n",
        ".gitattributes": "gen/** linguist-generated=true\n",
    }, "2024-01-01T10:00:00+00:00", "initial")
    shas["c2"] = commit(repo, {
        "src/utils.py": UTILS_PY_V2,
        "svc/server.go": SERVER_GO,
        "vendor/leftpad.js": VENDORED_JS,
        "node_modules/pad/index.js": VENDORED_JS,
        "gen/models.py": "def generated_model():\n    return 42\n",
        "src/pb_gen.py": GENERATED_PY,
        "static/app.min.js": MINIFIED_JS,
        "package-lock.json": "{}\n",
    }, "2024-02-01T10:00:00+00:00", "server")
    shas["c3"] = commit(repo, {
        "src/settings.py": SECRETS_PY,
        ".env": f"API_TOKEN={SECRETS['env_value']}\n",
        "secret_stuff/notes.py": "def hidden():\n    return 'ignored by .copilotignore'\n",
        "build/out.py": "def built():\n    return 'ignored by .gitignore'\n",
    }, "2024-03-01T10:00:00+00:00", "settings")
    shas["c4"] = commit(repo, {
        "web/shapes_copy.ts": near_duplicate_of(SHAPES_TS),
        "blob.bin": b"\x00\x01\x02binary\x00data",
        "src/nul.py": b"def f():\n    return 1\x00\n",
        "src/latin1.py": "x = 'caf\xe9'\n".encode("latin-1"),
    }, "2024-04-01T10:00:00+00:00", "copy")
    shas["c5"] = commit(repo, {}, "2024-05-01T10:00:00+00:00", "rename",
                        renames={"svc/server.go": "svc/health.go"})
    shas["c6"] = commit(repo, {"src/utils.py": UTILS_PY_V3, "lib/parser.rs": PARSER_RS},
                        "2024-06-01T10:00:00+00:00", "median and parser")
    return shas
