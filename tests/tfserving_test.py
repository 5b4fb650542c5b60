"""TF Serving's config and a promotion on a running server.

models.config is checked by parsing it back with TF Serving's own protos. No TF Serving binary
can be installed here (no registry package ships `tensorflow_model_server`), so the running
server is a stand-in: `FakeTFServing` below serves TF Serving's REST status API on 127.0.0.1
and applies, on every poll of models.config, the rule TF Serving documents for version labels
(a label that is already assigned may only move to a version that is loaded; a new label may
point at an unloaded version only with --allow_version_labels_for_unavailable_models). This is
the only mock in the suite, and it mocks exactly what cannot run here.
"""

import http.server
import json
import threading
from pathlib import Path

import pytest
from conftest import FAKE_VERSIONS, REPO_ROOT

from cyclegan_tfx.registry import cli as models
from cyclegan_tfx.registry import tfserving

VERSIONS = FAKE_VERSIONS


@pytest.fixture
def registry(fake_registry):
    return fake_registry


def _read(registry):
    return tfserving.parse_models_config(Path(registry.models_config_path).read_text())


def _served(config):
    (model,) = config.model_config_list.config
    return sorted(str(v) for v in model.model_version_policy.specific.versions)


def _labels(config):
    (model,) = config.model_config_list.config
    return {label: str(version) for label, version in model.version_labels.items()}


def test_models_config_round_trips_through_tf_serving_protos(registry):
    registry.promote(VERSIONS[0])
    registry.promote(VERSIONS[1])
    text = Path(registry.models_config_path).read_text()
    config = _read(registry)
    (model,) = config.model_config_list.config
    assert model.name == "cyclegan"
    assert model.base_path == str(Path(registry.model_dir).resolve())
    assert model.model_platform == "tensorflow"
    assert _served(config) == [VERSIONS[0], VERSIONS[1]]
    assert _labels(config) == {"production": VERSIONS[1]}
    assert tfserving.models_config_text(config) == text  # parse(write(x)) writes x again


def test_a_broken_config_is_reported():
    with pytest.raises(tfserving.ServingConfigError, match="ModelServerConfig"):
        tfserving.parse_models_config("model_config_list { config { nme: 'x' } }")


def test_a_label_must_point_at_a_served_version():
    with pytest.raises(tfserving.ServingConfigError, match="not served"):
        tfserving.models_config("m", "/m", ["1"], {"production": "2"})


class FakeTFServing:
    """TF Serving's model status API and its label rule, driven by a polled models.config."""

    def __init__(self, config_path, *, allow_unavailable_labels=True, load_polls=2):
        self.config_path = Path(config_path)
        self.allow_unavailable_labels = allow_unavailable_labels
        self.load_polls = load_polls
        self.loading = {}  # version -> polls left until AVAILABLE
        self.available = set()
        self.labels = {}
        self.refused = []
        self.started = False

    def poll(self):
        """One --model_config_file_poll_wait_seconds tick: reload the file, advance loading."""
        for version in list(self.loading):
            self.loading[version] -= 1
            if self.loading[version] <= 0:
                del self.loading[version]
                self.available.add(version)
        if not self.config_path.exists():
            return
        config = tfserving.parse_models_config(self.config_path.read_text())
        served, labels = _served(config), _labels(config)
        first = not self.started
        for label, version in labels.items():
            if version in self.available or self.labels.get(label) == version:
                continue
            new_label = label not in self.labels
            if not (new_label and (self.allow_unavailable_labels or first)):
                # TF Serving: "Request to assign label to version ..., which is not currently
                # available for inference"; the reload fails and nothing changes.
                self.refused.append((label, version))
                return
        self.started = True
        for version in served:
            if version not in self.available and version not in self.loading:
                self.loading[version] = self.load_polls
        self.available &= set(served)
        self.labels = labels

    def status(self, version):
        self.poll()
        if version in self.available:
            return "AVAILABLE"
        return "LOADING" if version in self.loading else None


@pytest.fixture
def server(registry):
    fake = FakeTFServing(registry.models_config_path)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            *_, model, _, version = self.path.split("/")
            state = fake.status(version) if model == "cyclegan" else None
            if state is None:
                self.send_response(404)
                body = {"error": f"Servable not found for request: Specific({model}, {version})"}
            else:
                self.send_response(200)
                status = {"error_code": "OK", "error_message": ""}
                entry = {"version": version, "state": state, "status": status}
                body = {"model_version_status": [entry]}
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _wait(url, **kwargs):
    def wait(version):
        tfserving.wait_until_available(url, "cyclegan", version, timeout_s=5, poll_s=0.01, **kwargs)

    return wait


def test_promotion_on_a_running_server_moves_the_label_only_once_loaded(registry, server):
    fake, url = server
    registry.promote(VERSIONS[0])  # first start: a new label, the server started after this
    fake.poll()
    fake.poll()
    fake.poll()
    assert fake.labels == {"production": VERSIONS[0]} and VERSIONS[0] in fake.available
    change = registry.promote(VERSIONS[1], wait_for_version=_wait(url))
    assert change.version == VERSIONS[1]
    fake.poll()
    assert fake.refused == []
    assert fake.labels == {"production": VERSIONS[1]}
    assert {VERSIONS[0], VERSIONS[1]} <= fake.available  # the old one stays for a rollback
    change = registry.rollback(wait_for_version=_wait(url))
    fake.poll()
    assert change.version == VERSIONS[0] and fake.refused == []
    assert fake.labels == {"production": VERSIONS[0]}


def test_moving_the_label_in_one_step_is_what_the_server_refuses(registry, server):
    # Shows that the stand-in enforces the rule the two-step promotion exists for.
    fake, _ = server
    registry.promote(VERSIONS[0])
    fake.poll()
    fake.poll()
    fake.poll()
    registry.promote(VERSIONS[1])  # no server given: final config written at once
    fake.poll()
    assert fake.refused == [("production", VERSIONS[1])]
    assert fake.labels == {"production": VERSIONS[0]}


def test_a_server_that_does_not_load_the_version_leaves_production_unchanged(
    registry, server, capsys
):
    fake, url = server
    registry.promote(VERSIONS[0])
    fake.poll()
    fake.poll()
    fake.poll()
    fake.load_polls = 10**6  # the new version never finishes loading
    events = registry.read()["events"]
    project = Path(registry.model_dir).parents[1]
    params = project / "params.yaml"
    params.write_text((REPO_ROOT / "params.yaml").read_text())
    args = ["promote", VERSIONS[1], "--to", "production", "--params", str(params)]
    status = models.main([*args, "--server", url, "--wait-timeout", "0.3"])
    assert status == 2
    err = capsys.readouterr().err
    assert f"did not report cyclegan version {VERSIONS[1]} AVAILABLE" in err
    assert "Traceback" not in err
    assert registry.read()["events"] == events
    assert registry.stage_version() == VERSIONS[0]
    config = _read(registry)
    assert _labels(config) == {"production": VERSIONS[0]}
    assert _served(config) == [VERSIONS[0], VERSIONS[1]]  # loading beside production
    assert fake.refused == []


def test_an_unreachable_server_is_a_clear_error(registry):
    registry.promote(VERSIONS[0])
    with pytest.raises(tfserving.ServerWaitError, match="last state: unknown"):
        registry.promote(
            VERSIONS[1],
            wait_for_version=lambda v: tfserving.wait_until_available(
                "http://127.0.0.1:9", "cyclegan", v, timeout_s=0.1, poll_s=0.01
            ),
        )
    assert registry.stage_version() == VERSIONS[0]


def test_a_server_url_must_be_http():
    with pytest.raises(tfserving.ServerWaitError, match="http"):
        tfserving.wait_until_available("localhost:8501", "m", "1", timeout_s=1)
