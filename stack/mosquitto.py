"""Mosquitto, the MQTT broker, with the project's own configuration, accounts and port.

Not Debian's service: ``<home>/mosquitto/`` holds the configuration, the ACL, the password
file and the persistence database; the broker listens on ``host:mqtt_port`` only. Run by root,
it runs as the package's ``mosquitto`` user (like PostgreSQL as ``postgres``), which owns that
folder. Accounts: ``energywatch-gateway`` (the ingest gateway, password generated on first
``up``) and one per enterprise, named by its credit code (``stack.mqtt_accounts``).
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass

from stack.apt import Apt
from stack.errors import StackError
from stack.files import write_atomic
from stack.lock import exclusive
from stack.mosquitto_passwd import delete_entry, entry_matches, has_entry, write_entry
from stack.password import mqtt_gateway_password
from stack.paths import StackPaths, shown
from stack.ports import port_open
from stack.progress import Progress, silent
from stack.run_as import RunAs
from stack.service import DetachedService, ProbeFailed
from stack.settings import StackSettings
from stack.templates import render

#: The ingest gateway's broker account (``EW_MQTT_USERNAME``).
GATEWAY_USER = "energywatch-gateway"
#: What the health probe subscribes to: the gateway's read permission under any prefix.
PROBE_TOPIC = "energywatch-stack-probe/+/readings"
PROBE_TIMEOUT_S = 5.0
RELOAD_TIMEOUT_S = 10.0


class Mosquitto(DetachedService):
    name = "mosquitto"
    marker = "mosquitto"
    stop_timeout_s = 15.0
    start_timeout_s = 30.0

    def __init__(self, settings: StackSettings, paths: StackPaths, apt: Apt) -> None:
        super().__init__(settings, paths)
        self.apt = apt
        self.config = self.dir / "mosquitto.conf"
        self.acl = self.dir / "acl"
        self.password_file = self.dir / "passwd"
        self.data = self.dir / "data"
        self.accounts_lock = self.dir / "accounts.lock"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.mqtt_port,)

    @property
    def endpoint_url(self) -> str:
        return f"mqtt://{self.endpoint}"

    def run_as(self) -> RunAs:
        # Mosquitto run by root would switch to this user anyway, but only after opening
        # its files; starting it as that user keeps every file it writes its own.
        return RunAs.named("mosquitto") if os.geteuid() == 0 else RunAs.current()

    def installed(self) -> bool:
        return _binaries_present() and self.config.is_file()

    def install(self, progress: Progress) -> None:
        if self.installed():
            # Rewriting the configuration here would hide a change from ensure_running,
            # which restarts the broker only when its own configure() changes something.
            return
        if not _binaries_present():
            # Debian's package also brings a service on :1883; it is not the one we use.
            self.apt.ensure(["mosquitto"], recommends=False)
        self.configure()

    def configure(self) -> bool:
        user = self.run_as()
        for folder in (self.dir, self.data):
            self.ensure_dir(folder, 0o700)
            user.chown(folder)
        if not self.password_file.exists():
            write_atomic(self.password_file, "", mode=0o600, owner=user)
        config = render(
            "mosquitto.conf",
            host=self.settings.host,
            port=self.settings.mqtt_port,
            password_file=self.password_file,
            acl_file=self.acl,
            data_dir=self.data,
        )
        acl = render("mosquitto.acl", gateway_user=GATEWAY_USER)
        changed = write_atomic(self.config, config, mode=0o600, owner=user)
        return write_atomic(self.acl, acl, mode=0o600, owner=user) or changed

    def command(self) -> list[str]:
        return [_binary("mosquitto") or "mosquitto", "-c", str(self.config)]

    def probe_ready(self) -> None:
        # Any CONNACK, even "not authorized", shows the broker serves MQTT; the gateway's
        # own login may only work once after_ready has written its password.
        broker_answer(self.settings.host, self.settings.mqtt_port)

    def after_ready(self, progress: Progress) -> None:
        password = mqtt_gateway_password(self.settings, self.paths, create=True)
        assert password is not None  # create=True always yields one
        self.set_account(GATEWAY_USER, password.get_secret_value(), progress)

    def probe(self) -> str:
        password = mqtt_gateway_password(self.settings, self.paths, create=False)
        if password is None:
            raise ProbeFailed(
                f"no password in {shown(self.paths.mqtt_gateway_password_file)} "
                "or EW_STACK_MQTT_GATEWAY_PASSWORD: run `energywatch stack up`"
            )
        answer = broker_answer(
            self.settings.host,
            self.settings.mqtt_port,
            username=GATEWAY_USER,
            password=password.get_secret_value(),
            subscribe=PROBE_TOPIC,
        )
        if not answer.logged_in:
            raise ProbeFailed(
                f"the broker refused {GATEWAY_USER}'s login ({answer.connack}): "
                f"run `energywatch stack up` to write its password into {shown(self.password_file)}"
            )
        if not answer.subscribed:
            raise ProbeFailed(
                f"{GATEWAY_USER} may not subscribe to {PROBE_TOPIC} ({answer.suback}): "
                f"check {shown(self.acl)}"
            )
        return f"mosquitto {_version()}, {GATEWAY_USER} logs in and subscribes"

    # --- accounts ------------------------------------------------------------------

    def set_account(self, user: str, password: str, progress: Progress = silent) -> bool:
        """Give ``user`` this password; a running broker reloads and is checked to accept it.

        Returns whether the password file changed (False when the password was already set).
        """
        if not self.installed():
            raise StackError("mosquitto is not installed: run `energywatch stack up`")
        with exclusive(self.accounts_lock, progress):
            if entry_matches(self.password_file, user, password):
                return False
            progress(f"setting the broker password of {user}")
            write_entry(
                self.password_file,
                user,
                password,
                run_as=self.run_as(),
                log_path=self.paths.log("install"),
            )
        if self.pid_file.running_pid() is not None:
            self._reload_until_accepted(user, password)
        return True

    def remove_account(self, user: str) -> bool:
        """Remove ``user``'s account; a running broker reloads. Returns whether it existed.

        Clients already connected stay connected until they disconnect.
        """
        with exclusive(self.accounts_lock, silent):
            if not has_entry(self.password_file, user):
                return False
            delete_entry(
                self.password_file, user, run_as=self.run_as(), log_path=self.paths.log("install")
            )
        pid = self.pid_file.running_pid()
        if pid is not None:
            os.kill(pid, signal.SIGHUP)
        return True

    def _reload_until_accepted(self, user: str, password: str) -> None:
        """SIGHUP makes mosquitto reread its password and ACL files; wait until it has."""
        pid = self.pid_file.running_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = broker_answer(
                    self.settings.host, self.settings.mqtt_port, username=user, password=password
                )
            except ProbeFailed:
                answer = None
            if answer is not None and answer.logged_in:
                return
            time.sleep(0.05)
        said = answer.connack if answer is not None else "no answer"
        raise StackError(
            f"mosquitto (pid {pid}) still refuses {user} {RELOAD_TIMEOUT_S:.0f}s after a reload "
            f"({said}); read {shown(self.log_path)}"
        )


@dataclass(frozen=True)
class BrokerAnswer:
    """What the broker said to a login (and, when asked for, a subscription)."""

    connack: str
    logged_in: bool
    suback: str | None = None
    subscribed: bool = False


def broker_answer(
    host: str,
    port: int,
    *,
    username: str | None = None,
    password: str | None = None,
    subscribe: str | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> BrokerAnswer:
    """Connect (MQTT 3.1.1, clean session), optionally subscribe at QoS 1, and disconnect.

    Raises ProbeFailed, with the reason, when the broker does not answer at all.
    """
    import paho.mqtt.client as mqtt  # imported on use, like the other probes' clients
    from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

    if not port_open(host, port):
        raise ProbeFailed(f"port {port} is not open")
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"energywatch-stack-probe-{secrets.token_hex(4)}",
        clean_session=True,
    )
    if username is not None:
        client.username_pw_set(username, password)
    said: dict[str, str | bool] = {}

    def on_connect(_c: object, _u: object, _f: object, code: object, _p: object) -> None:
        said["connack"] = str(code)
        said["logged_in"] = not getattr(code, "is_failure", True)

    def on_subscribe(_c: object, _u: object, _m: object, codes: object, _p: object) -> None:
        granted = list(codes) if isinstance(codes, list) else []
        said["suback"] = ", ".join(str(c) for c in granted)
        said["subscribed"] = bool(granted) and not any(
            getattr(c, "is_failure", True) for c in granted
        )

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    deadline = time.monotonic() + timeout_s
    try:
        client.connect(host, port, keepalive=10)
    except OSError as error:
        raise ProbeFailed(f"cannot connect to {host}:{port}: {error}") from error
    try:
        while "connack" not in said:
            if time.monotonic() > deadline:
                raise ProbeFailed(f"no CONNACK within {timeout_s:.0f}s on port {port}")
            lost = client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS
            if lost and "connack" not in said:
                raise ProbeFailed(f"port {port} closed the connection without a CONNACK")
        if not said["logged_in"] or subscribe is None:
            return BrokerAnswer(connack=str(said["connack"]), logged_in=bool(said["logged_in"]))
        client.subscribe(subscribe, qos=1)
        while "suback" not in said:
            if time.monotonic() > deadline:
                raise ProbeFailed(f"no SUBACK within {timeout_s:.0f}s on port {port}")
            if client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise ProbeFailed(f"port {port} closed the connection instead of a SUBACK")
        return BrokerAnswer(
            connack=str(said["connack"]),
            logged_in=True,
            suback=str(said["suback"]),
            subscribed=bool(said["subscribed"]),
        )
    finally:
        client.disconnect()
        client.loop(timeout=0.01)


def _binaries_present() -> bool:
    return _binary("mosquitto") is not None and _binary("mosquitto_passwd") is not None


def _binary(name: str) -> str | None:
    # The broker lives in /usr/sbin, which is not on every user's PATH.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


@functools.cache
def _version() -> str:
    """The broker's version, from the first line of ``mosquitto -h``."""
    try:
        result = subprocess.run(
            [_binary("mosquitto") or "mosquitto", "-h"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "(version unknown)"
    match = re.search(r"mosquitto version (\S+)", result.stdout + result.stderr)
    return match.group(1) if match else "(version unknown)"
