"""docker/: the Dockerfile, compose file, Mosquitto, Prometheus and Grafana files agree with Kawal itself.

Running the stack needs a Docker engine, which this machine does not have: the files are parsed and
cross-checked here, and the Mosquitto config is run by the real (Debian) mosquitto with files written by
`kawal devices`. `test_compose_config_with_docker` runs `docker compose config` where Docker exists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import click
import paho.mqtt.client as mqtt
import pytest
import yaml

from devices.cli import devices
from devices.provision import Provisioner
from ingest import influx
from kawal.metrics import Metrics
from kawal.settings import Settings
from tests.servers import free_port, wait_port

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")


# -- helpers -------------------------------------------------------------------------------------------


def env_example() -> dict[str, str]:
    out = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, with the values of .env.example."""

    def sub(m: re.Match[str]) -> str:
        whole = m.group(0)
        name = m.group(1)
        if name in env:
            return env[name]
        if ":-" in whole:
            return whole.split(":-", 1)[1][:-1]
        raise AssertionError(f"{name} is used in compose.yaml but not defined in docker/.env.example")

    return VAR_RE.sub(sub, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    svc = compose["services"][name]
    assert isinstance(svc, dict)
    return svc


def env_of(compose: dict[str, Any], name: str, raw: bool = False) -> dict[str, str]:
    env = service(compose, name).get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    values = {str(k): str(v) for k, v in env.items()}
    return values if raw else {k: interpolate(v, env_example()) for k, v in values.items()}


def mounts(compose: dict[str, Any], name: str) -> list[tuple[str, str]]:
    """(source, target) of each volume of a service; a source starting with . is a host path."""
    out = []
    for v in service(compose, name).get("volumes", []):
        parts = v.split(":")
        out.append((parts[0], parts[1]))
    return out


def host_path_of(compose: dict[str, Any], name: str, container_path: str) -> Path | None:
    """The file on the host that a bind mount of `name` shows at `container_path`."""
    p = PurePosixPath(container_path)
    for src, target in mounts(compose, name):
        if src.startswith(".") and (p == PurePosixPath(target) or PurePosixPath(target) in p.parents):
            return (DOCKER / src / p.relative_to(target)).resolve()
    return None


def on_volume(compose: dict[str, Any], name: str, container_path: str) -> bool:
    p = PurePosixPath(container_path)
    return any(PurePosixPath(t) == p or PurePosixPath(t) in p.parents for _, t in mounts(compose, name))


def container_ports(compose: dict[str, Any], name: str) -> set[int]:
    return {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in service(compose, name).get("ports", [])}


def mosquitto_conf() -> dict[str, list[str]]:
    conf: dict[str, list[str]] = {}
    for line in (DOCKER / "mosquitto" / "mosquitto.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.strip().partition(" ")
            conf.setdefault(key, []).append(value)
    return conf


def dockerfile() -> list[tuple[str, str]]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instr, _, rest = line.strip().partition(" ")
            out.append((instr.upper(), rest.strip()))
    return out


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for k in list(os.environ):
        if k.startswith("KAWAL_"):
            monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return Settings.model_validate({})


def devices_envvars() -> set[str]:
    out: set[str] = set()
    for cmd in devices.commands.values():
        for p in cmd.params:
            if isinstance(p, click.Option) and isinstance(p.envvar, str):
                out.add(p.envvar)
    return out


# -- tests ---------------------------------------------------------------------------------------------


def test_services_and_volumes(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"mosquitto", "influxdb", "kawal", "prometheus", "grafana"}
    declared = set(compose.get("volumes") or {})
    for name in compose["services"]:
        for src, _ in mounts(compose, name):
            if src.startswith("."):
                assert (DOCKER / src).exists(), f"{name} mounts {src}, which is not in docker/"
            else:
                assert src in declared, f"{name} uses volume {src}, not declared at the top level"
    assert service(compose, "influxdb")["image"].startswith("influxdb:2")
    assert service(compose, "mosquitto")["image"].startswith("eclipse-mosquitto:2")
    assert service(compose, "kawal")["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}


def test_every_kawal_variable_is_a_setting(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_of(compose, "kawal")
    fields = {f"KAWAL_{name.upper()}" for name in Settings.model_fields}
    extra = devices_envvars()
    for key in env:
        assert key in fields or key in extra, f"{key}: neither a Settings field nor a `kawal devices` option"
    s = settings_from({k: v for k, v in env.items() if k in fields}, monkeypatch)
    assert s.mqtt_url and s.influx_url and s.admin_token is not None


def test_http_port_agrees_everywhere(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_from({k: v for k, v in env_of(compose, "kawal").items() if k.startswith("KAWAL_")},
                      monkeypatch)
    assert s.http_host == "0.0.0.0", "inside a container the API must listen on every interface"
    assert s.http_port in container_ports(compose, "kawal")
    instrs = dockerfile()
    assert ("EXPOSE", str(s.http_port)) in instrs
    env_line = " ".join(rest for i, rest in instrs if i == "ENV")
    assert f"KAWAL_HTTP_PORT={s.http_port}" in env_line
    health = next(rest for i, rest in instrs if i == "HEALTHCHECK")
    assert "/healthz" in health
    assert f"'KAWAL_HTTP_PORT', '{s.http_port}'" in health
    prom = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    targets = prom["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"kawal:{s.http_port}"]
    assert prom["scrape_configs"][0]["metrics_path"] == "/metrics"


def test_mqtt_url_reaches_the_mosquitto_service(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings_from({k: v for k, v in env_of(compose, "kawal").items() if k.startswith("KAWAL_")},
                      monkeypatch)
    assert s.mqtt_url is not None
    url = urlsplit(s.mqtt_url)
    conf = mosquitto_conf()
    listener_port = int(conf["listener"][0].split()[0])
    assert url.scheme == "mqtt" and url.hostname == "mosquitto" and url.port == listener_port
    assert listener_port in container_ports(compose, "mosquitto")
    assert url.username == "kawal" and url.password == env_example()["KAWAL_MQTT_PASSWORD"]
    assert conf["allow_anonymous"] == ["false"]


def test_mosquitto_files_are_mounted_and_shared_with_kawal(compose: dict[str, Any]) -> None:
    conf = mosquitto_conf()
    assert ("./mosquitto/mosquitto.conf", "/mosquitto/config/mosquitto.conf") in mounts(compose, "mosquitto")
    for key in ("password_file", "acl_file", "persistence_location"):
        assert on_volume(compose, "mosquitto", conf[key][0]), f"{key} {conf[key][0]} is not on a volume"
    env = env_of(compose, "kawal")
    # `kawal devices` in the kawal container writes the very files the broker reads.
    pw_host = host_path_of(compose, "kawal", env["KAWAL_MOSQUITTO_PASSWORD_FILE"])
    acl_host = host_path_of(compose, "kawal", env["KAWAL_MOSQUITTO_ACL_FILE"])
    assert pw_host is not None and pw_host == host_path_of(compose, "mosquitto", conf["password_file"][0])
    assert acl_host is not None and acl_host == host_path_of(compose, "mosquitto", conf["acl_file"][0])
    assert (DOCKER / "mosquitto" / "auth" / ".gitignore").read_text().splitlines()[1:] == ["*", "!.gitignore"]
    assert int(conf["max_inflight_messages"][0]) >= 1000
    assert int(conf["max_queued_messages"][0]) >= 1_000_000
    assert conf["persistence"] == ["true"]


def test_kawal_state_is_on_a_volume(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_from({k: v for k, v in env_of(compose, "kawal").items() if k.startswith("KAWAL_")},
                      monkeypatch)
    assert on_volume(compose, "kawal", str(Path(s.db).parent))
    vol = next(rest for i, rest in dockerfile() if i == "VOLUME")
    assert str(Path(s.db).parent) in vol


def test_influx_settings_match_the_influxdb_service(compose: dict[str, Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    raw_k, raw_i = env_of(compose, "kawal", raw=True), env_of(compose, "influxdb", raw=True)
    s = settings_from({k: v for k, v in env_of(compose, "kawal").items() if k.startswith("KAWAL_")},
                      monkeypatch)
    inf = env_of(compose, "influxdb")
    assert s.influx_url is not None
    url = urlsplit(s.influx_url)
    assert url.hostname == "influxdb" and url.port == 8086 and 8086 in container_ports(compose, "influxdb")
    assert s.influx_org == inf["DOCKER_INFLUXDB_INIT_ORG"]
    assert s.influx_bucket == inf["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert inf["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    # The same secret, from the same variable: Kawal writes with the token InfluxDB was set up with.
    token_vars = VAR_RE.findall(raw_i["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"])
    assert token_vars and VAR_RE.findall(raw_k["KAWAL_INFLUX_TOKEN"]) == token_vars


def test_grafana_datasources_point_at_the_services(compose: dict[str, Any]) -> None:
    prov = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/kawal.yaml").read_text())
    by_type = {d["type"]: d for d in prov["datasources"]}
    idb = by_type["influxdb"]
    inf_env = env_of(compose, "influxdb")
    url = urlsplit(idb["url"])
    assert url.hostname == "influxdb" and url.port == 8086
    assert idb["jsonData"]["version"] == "Flux"
    assert idb["jsonData"]["organization"] == inf_env["DOCKER_INFLUXDB_INIT_ORG"]
    assert idb["jsonData"]["defaultBucket"] == inf_env["DOCKER_INFLUXDB_INIT_BUCKET"]
    token_var = VAR_RE.findall(idb["secureJsonData"]["token"])
    grafana_raw = env_of(compose, "grafana", raw=True)
    assert token_var and token_var[0] in grafana_raw
    assert VAR_RE.findall(grafana_raw[token_var[0]]) == VAR_RE.findall(
        env_of(compose, "influxdb", raw=True)["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"])
    prom = urlsplit(by_type["prometheus"]["url"])
    assert prom.hostname == "prometheus" and prom.hostname in compose["services"] and prom.port == 9090

    assert ("./grafana/provisioning", "/etc/grafana/provisioning") in mounts(compose, "grafana")
    providers = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/kawal.yaml").read_text())
    path = providers["providers"][0]["options"]["path"]
    host = host_path_of(compose, "grafana", path)
    assert host is not None and (host / "kawal.json").exists()
    home = env_of(compose, "grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path_of(compose, "grafana", home) == (host / "kawal.json").resolve()


def test_dashboard_queries_match_what_kawal_writes() -> None:
    dash = json.loads((DOCKER / "grafana/dashboards/kawal.json").read_text())
    prov = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/kawal.yaml").read_text())
    uids = {d["uid"]: d["type"] for d in prov["datasources"]}
    influx_fields = {"lat", "lon", "acc", "spd", "hdg", "bat", "seq", "seal_code", "seal"}
    families = list(Metrics().registry.collect())
    metric_names = {m.name for m in families} | {f"{m.name}_total" for m in families if m.type == "counter"}
    kinds = {p["type"] for p in dash["panels"]}
    assert {"geomap", "timeseries", "bargauge"} <= kinds
    for panel in dash["panels"]:
        ds = panel["datasource"]
        assert uids.get(ds["uid"]) == ds["type"], panel["title"]
        for t in panel["targets"]:
            assert t["datasource"] == ds
            if ds["type"] == "influxdb":
                q = t["query"]
                assert re.findall(r'from\(bucket: "([^"]+)"\)', q) == [prov["datasources"][0]["jsonData"]
                                                                      ["defaultBucket"]]
                assert re.findall(r'r\._measurement == "([^"]+)"', q) == [influx.MEASUREMENT]
                used = set(re.findall(r'r\._field == "([^"]+)"', q))
                assert used and used <= influx_fields, (panel["title"], used - influx_fields)
            else:
                names = set(re.findall(r"\b(kawal_[a-z_]+)\b", t["expr"]))
                assert names and names <= metric_names, (panel["title"], names - metric_names)
    geo = next(p for p in dash["panels"] if p["type"] == "geomap")
    loc = geo["options"]["layers"][0]["location"]
    query = geo["targets"][0]["query"]
    assert loc["mode"] == "coords" and f'"{loc["latitude"]}"' in query and f'"{loc["longitude"]}"' in query
    mapping = geo["fieldConfig"]["overrides"][0]["properties"][0]["value"][0]["options"]
    assert {v["text"]: int(k) for k, v in mapping.items()} == influx.SEAL_CODES
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    assert "alerts raised per type" in titles and "seal status" in titles and "positions" in titles


def test_dockerfile_builds_a_non_root_service_image() -> None:
    instrs = dockerfile()
    assert instrs[0] == ("FROM", "python:3.11-slim")
    assert any(i == "RUN" and "pip install ." in rest for i, rest in instrs)
    users = [rest for i, rest in instrs if i == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(i == "RUN" and "useradd" in rest and users[-1] in rest for i, rest in instrs)
    copied = {rest.split()[0].rstrip("/") for i, rest in instrs if i == "COPY"}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, f"packages not copied into the image: {packages - copied}"
    assert ("ENTRYPOINT", '["kawal"]') in instrs and ("CMD", '["serve"]') in instrs
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    assert "docker/.env" in ignore and "docker/mosquitto/auth" in ignore


def test_healthcheck_command_probes_a_real_kawal(kawal_factory: Callable[..., Any]) -> None:
    """The image's HEALTHCHECK command, run as is: healthy against `kawal serve`, unhealthy on a dead port."""
    health = next(rest for i, rest in dockerfile() if i == "HEALTHCHECK")
    cmd = json.loads(health.split(" CMD ", 1)[1])
    cmd[0] = sys.executable  # `python` in the image
    kawal = kawal_factory()
    env = {"PATH": os.environ.get("PATH", ""), "KAWAL_HTTP_PORT": str(kawal.port)}
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=30).returncode == 0
    env["KAWAL_HTTP_PORT"] = str(free_port())
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=30).returncode != 0


def test_env_example_defines_every_variable(compose: dict[str, Any]) -> None:
    used = set(VAR_RE.findall((DOCKER / "compose.yaml").read_text()))
    assert used <= set(env_example()), used - set(env_example())
    assert (DOCKER / ".gitignore").read_text().split() == [".env"]


def test_mosquitto_conf_runs_on_a_real_broker(compose: dict[str, Any], tmp_path: Path) -> None:
    """The compose Mosquitto config, with its paths moved to a temporary folder, on the real mosquitto:
    a tracker provisioned by `kawal devices` publishes and Kawal's account reads it."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.fail("mosquitto is not installed: run the README's test command, which installs it")
    auth, data = tmp_path / "auth", tmp_path / "data"
    data.mkdir()
    prov = Provisioner(auth / "passwd", auth / "acl", create_dirs=True)
    svc = prov.add_service_account("kawal")
    trk = prov.add_tracker("TRK-0001")
    port = free_port()
    text = (DOCKER / "mosquitto" / "mosquitto.conf").read_text()
    text = text.replace("/mosquitto/auth/", f"{auth}/").replace("/mosquitto/data/", f"{data}/")
    text = re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", text, flags=re.M)
    text = text.replace("log_dest stdout", f"log_dest file {tmp_path}/mosquitto.log")
    if os.geteuid() == 0:
        text += "user root\n"  # as root, mosquitto would switch to a user that cannot read tmp_path
    (tmp_path / "mosquitto.conf").write_text(text)
    proc = subprocess.Popen([binary, "-c", str(tmp_path / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        got: list[bytes] = []
        ready = threading.Event()
        kawal = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="kawal", protocol=mqtt.MQTTv5)
        kawal.username_pw_set("kawal", svc.password)
        kawal.on_connect = lambda c, u, f, rc, p: c.subscribe("kawal/v1/#", qos=1)
        kawal.on_subscribe = lambda c, u, mid, rcs, p: ready.set()
        kawal.on_message = lambda c, u, m: got.append(bytes(m.payload))
        kawal.connect("127.0.0.1", port)
        kawal.loop_start()
        assert ready.wait(10)
        pub = subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-u", "TRK-0001", "-P",
             trk.password, "-t", "kawal/v1/TRK-0001/telemetry", "-m", '{"ts": 1}'],
            capture_output=True, timeout=10)
        assert pub.returncode == 0, pub.stderr
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got == [b'{"ts": 1}']
        kawal.disconnect()
        kawal.loop_stop()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.docker
def test_compose_config_with_docker() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine here: the compose file is checked by parsing only")
    r = subprocess.run([docker, "compose", "-f", str(DOCKER / "compose.yaml"), "--env-file",
                        str(DOCKER / ".env.example"), "config", "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
