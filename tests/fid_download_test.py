"""The opt-in downloader of the FID Inception graph, against a local HTTP server (offline)."""

import hashlib
import http.server
import io
import socket
import tarfile
import threading
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from fid_backbone_test import _write_synthetic_graph

from cyclegan_tfx.config import BackboneConfig, load_config
from cyclegan_tfx.evaluation.fid import backbone as backbone_lib
from cyclegan_tfx.evaluation.fid.backbone import load_backbone
from cyclegan_tfx.evaluation.fid.download import (
    STANDARD_ARCHIVE,
    ArchiveSpec,
    DownloadError,
    download_inception,
)
from cyclegan_tfx.evaluation.fid.weights import GRAPHDEF, TORCHSCRIPT, WeightsError

MEMBER_BYTES = b"synthetic classify_image_graph_def.pb " * 100


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tgz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class _Server:
    """A threaded HTTP server on 127.0.0.1 (ephemeral port) with canned responses."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.truncated: dict[str, bytes] = {}  # path -> body sent with a larger Content-Length
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                if self.path in server.routes:
                    body = server.routes[self.path]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif self.path in server.truncated:
                    body = server.truncated[self.path]
                    self.send_response(200)
                    self.send_header("Content-Length", str(2 * len(body)))
                    self.end_headers()
                    self.wfile.write(body)  # then the connection closes mid-body
                    self.close_connection = True
                else:
                    self.send_error(404)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture()
def server():
    srv = _Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _spec(url: str, archive: bytes, member_bytes: bytes = MEMBER_BYTES, **overrides) -> ArchiveSpec:
    fields = {
        "url": url,
        "size": len(archive),
        "sha256": _sha256(archive),
        "member": GRAPHDEF.filename,
        "member_size": len(member_bytes),
        "member_sha256": _sha256(member_bytes),
    }
    return ArchiveSpec(**{**fields, **overrides})


def _archive(member: bytes = MEMBER_BYTES) -> bytes:
    return _tgz({"LICENSE": b"license text", GRAPHDEF.filename: member, "other.txt": b"x"})


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_standard_archive_constants_match_the_issue():
    assert STANDARD_ARCHIVE.url.endswith("/inception-2015-12-05.tgz")
    assert STANDARD_ARCHIVE.size == 88_931_400
    assert STANDARD_ARCHIVE.sha256.startswith("f6b539e07358")
    assert STANDARD_ARCHIVE.member_size == 95_673_916
    assert STANDARD_ARCHIVE.member_sha256.startswith("009d6814d1bc")


def test_download_verifies_and_installs_atomically(server, tmp_path):
    archive = _archive()
    server.routes["/inception.tgz"] = archive
    cache = tmp_path / "cache"
    path = download_inception(cache, _spec(server.url("/inception.tgz"), archive))
    assert path == cache / GRAPHDEF.filename
    assert path.read_bytes() == MEMBER_BYTES
    assert _leftovers(cache) == [GRAPHDEF.filename]  # no temporary files, nothing else extracted
    # Already there and verified: no second request.
    assert download_inception(cache, _spec(server.url("/inception.tgz"), archive)) == path
    assert server.requests == ["/inception.tgz"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"sha256": "0" * 64}, "archive SHA-256 mismatch"),
        ({"size": 12}, "expected 12 bytes|got .* bytes, expected 12"),
        ({"member_sha256": "1" * 64}, "expected .* and 1111"),
        ({"member": "missing.pb"}, "has no file missing.pb"),
    ],
)
def test_checksum_and_content_mismatches_leave_nothing(server, tmp_path, override, message):
    archive = _archive()
    server.routes["/inception.tgz"] = archive
    spec = _spec(server.url("/inception.tgz"), archive, **override)
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match=message) as error:
        download_inception(cache, spec)
    text = str(error.value)
    assert spec.url in text and spec.member in text
    assert spec.sha256 in text and spec.member_sha256 in text and f"{spec.member_size:,}" in text
    assert _leftovers(cache) == []


def test_interrupted_transfer(server, tmp_path):
    archive = _archive()
    server.truncated["/cut.tgz"] = archive[: len(archive) // 2]
    spec = _spec(server.url("/cut.tgz"), archive)
    with pytest.raises(DownloadError, match="interrupted") as error:
        download_inception(tmp_path / "cache", spec)
    assert f"of {len(archive):,} bytes" in str(error.value)
    assert _leftovers(tmp_path / "cache") == []


def test_http_error(server, tmp_path):
    spec = _spec(server.url("/nope.tgz"), _archive())
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_inception(tmp_path / "cache", spec)


def test_offline_is_a_clear_error_with_manual_steps(tmp_path):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    archive = _archive()
    spec = _spec(f"http://127.0.0.1:{port}/inception-2015-12-05.tgz", archive)
    target = tmp_path / "cache" / GRAPHDEF.filename
    with pytest.raises(DownloadError, match="unreachable") as error:
        download_inception(tmp_path / "cache", spec, timeout_s=5)
    text = str(error.value)
    for expected in (spec.url, f"{spec.size:,} bytes", spec.sha256, spec.member_sha256):
        assert expected in text
    assert f"tar -xzf inception-2015-12-05.tgz {GRAPHDEF.filename}" in text
    assert str(target) in text
    assert not target.exists()


def test_default_params_never_download():
    assert load_config(REPO_ROOT / "params.yaml").evaluate.backbone.download is False
    assert BackboneConfig().download is False


def test_load_backbone_downloads_only_when_opted_in(server, tmp_path, monkeypatch):
    graph = _write_synthetic_graph(tmp_path / "graph.pb").read_bytes()
    archive = _archive(graph)
    server.routes["/inception.tgz"] = archive
    spec = _spec(server.url("/inception.tgz"), archive, member_bytes=graph)
    sentinel = object()
    monkeypatch.setattr(backbone_lib, "fallback_backbone", lambda seed, batch_size=16: sentinel)
    cache = tmp_path / "cache"

    off = load_backbone(BackboneConfig(cache_dir=str(cache)), env={}, archive=spec)
    assert off is sentinel
    assert server.requests == []

    config = BackboneConfig(cache_dir=str(cache), download=True)
    backbone = load_backbone(config, env={}, archive=spec, expected_sha256=_sha256(graph))
    assert backbone.name == f"graphdef-sha256-{_sha256(graph)[:12]}"
    assert (cache / GRAPHDEF.filename).read_bytes() == graph
    assert server.requests == ["/inception.tgz"]
    # The default expected hash is the official one: a downloaded synthetic graph is refused.
    with pytest.raises(WeightsError, match="SHA-256 mismatch"):
        load_backbone(config, env={}, archive=spec)


def test_opted_in_download_failure_is_raised_not_hidden(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = _spec(f"http://127.0.0.1:{port}/x.tgz", _archive())
    config = BackboneConfig(cache_dir=str(tmp_path), download=True)
    with pytest.raises(DownloadError, match="unreachable"):
        load_backbone(config, env={}, archive=spec)


def test_pytorch_fid_weights_are_rejected_clearly(tmp_path):
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    path.write_bytes(b"not really torch")
    with pytest.raises(WeightsError, match=r"pytorch-fid weights .* are not supported") as error:
        backbone_lib.standard_inception_backbone(path, expected_sha256=None)
    assert TORCHSCRIPT.filename in str(error.value) and GRAPHDEF.filename in str(error.value)
