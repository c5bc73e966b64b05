# publish's questions to the PyPI side, asked with twine's own settings (twine 7.0.0, pinned): the
# repository from TWINE_REPOSITORY_URL, else TWINE_REPOSITORY's section of ~/.pypirc (default "pypi"),
# exactly as `twine upload` resolves them; the credentials from TWINE_USERNAME/TWINE_PASSWORD, .pypirc,
# the keyring or (on PyPI, in CI) trusted publishing. Nothing is uploaded.
#
#   where                      -> {"upload": URL, "password": "env" | "pypirc" | null}
#   ask NAME VERSION INDEX [root]  -> {"out": [files of NAME VERSION on INDEX], "credentials": ...}
#                                     (root: the index itself must answer, as a derived one may not exist)
#
# "credentials" is {"ok": true, "user": ..., "trusted": bool} or {"ok": false, "why": ...}. The check is a
# POST to the upload URL with the credentials and `:action=file_upload` but no file: an index refuses
# bad credentials first (401/403: PyPI, pypiserver), and refuses the empty upload (400) only once they
# are accepted.
import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request

from twine import exceptions, settings


def twine_settings():
    # twine's own argument parser, given the options publish's `twine upload` gets: its environment
    # defaults (TWINE_REPOSITORY, TWINE_REPOSITORY_URL, TWINE_USERNAME, ...) and ~/.pypirc apply as
    # they do for the upload.
    parser = argparse.ArgumentParser(prog="twine upload")
    settings.Settings.register_argparse_arguments(parser)
    args = parser.parse_args(["--non-interactive", "--disable-progress-bar"])
    return settings.Settings.from_argparse(args)


def where(s):
    password = None
    if "TWINE_PASSWORD" in os.environ:
        password = "env"
    elif s.repository_config.get("password"):
        password = "pypirc"
    return {"upload": s.repository_config["repository"], "password": password}


def get(url):
    """The page's text; None for a 404; SystemExit naming the URL for anything else."""
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return answer.read().decode()
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        fail(f"{url}: HTTP {e.code}")
    except (urllib.error.URLError, OSError) as e:
        fail(f"{url} does not answer: {getattr(e, 'reason', e)}")


def fail(why):
    print(json.dumps({"error": why}))
    raise SystemExit(0)


def out_on(index, name, version, root):
    if root and get(index) is None:
        fail(f"{index} is not a simple index (404)")
    body = get(index.rstrip("/") + "/" + name + "/")
    if body is None:
        return []
    files = re.findall(r">\s*([^<>\s]+)\s*</a>", body)
    prefix = f"{name}-{version}"
    return [f for f in files if f.startswith(prefix + "-") or f == prefix + ".tar.gz"]


def credentials(s):
    try:
        username, password = s.username, s.password
        repository = s.create_repository()
    except exceptions.TrustedPublishingFailure as e:
        return {"ok": False, "why": f"trusted publishing failed: {e}"}
    except exceptions.TwineException as e:
        return {"ok": False, "why": str(e)}
    trusted = s.auth._tp_token is not None
    fields = {":action": (None, "file_upload"), "protocol_version": (None, "1")}
    try:
        answer = repository.session.post(
            repository.url, files=fields, allow_redirects=False, timeout=60
        )
    except Exception as e:  # noqa: BLE001 - any network failure: the index cannot say
        return {"ok": False, "why": f"{repository.url} does not answer: {e}"}
    if answer.status_code in (401, 403):
        reason = answer.reason or ""
        # PyPI puts its message in the reason; pypiserver's is its HTML page.
        return {"ok": False, "why": f"HTTP {answer.status_code} {reason}".strip(), "user": username}
    return {"ok": True, "user": username, "trusted": trusted, "status": answer.status_code}


def main():
    try:
        s = twine_settings()
    except exceptions.TwineException as e:
        fail(str(e).strip())
    if sys.argv[1] == "where":
        print(json.dumps(where(s)))
        return
    name, version, index = sys.argv[2:5]
    out = out_on(index, name, version, sys.argv[5:] == ["root"])
    print(json.dumps({"out": out, "credentials": credentials(s)}))


main()
