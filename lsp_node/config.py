"""Operator configuration: defaults < TOML file < environment (LSP_SECTION__KEY) < command line."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, cast, get_args, get_origin

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from lsp_node._ldk import Lsps1Options, Lsps2Options, NodeOptions
from lsp_node.config_lsps import Lsps1Settings, Lsps2Settings, Lsps5Settings, Section
from lsp_node.errors import ConfigError
from lsp_node.notify.urls import check_template

ENV_PREFIX = "LSP_"

Network = Literal["bitcoin", "testnet", "testnet4", "signet", "regtest"]


# The engine's defaults (lsp_engine::NodeOptions::default in Rust) are the one source of the
# node options' defaults; the settings below only add the operator's bounds.
_ENGINE = NodeOptions()
LogLevel = Literal["trace", "debug", "info", "warn", "error"]


def check_host_port(v: str) -> str:
    """`host:port` with both parts; a bare port would bind every interface."""
    host, sep, port = v.rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"'{v}' is not host:port (give the host too, e.g. 127.0.0.1:{port or 9736})")
    return v


class NodeSettings(Section):
    data_dir: Path = Field(default=Path("data"), description="Root of all state; one sub-folder per network.")
    network: Network = "regtest"
    # The one deliberate departure from the engine's default (port 0, for libraries and
    # tests): a daemon listens on the Lightning port peers expect.
    listen_addr: str = Field(
        default="127.0.0.1:9735", description="host:port for Lightning peers (port 0: any free port)."
    )
    log_level: LogLevel = cast(LogLevel, _ENGINE.log_level)
    sync_interval_secs: int = Field(default=_ENGINE.sync_interval_secs, ge=1, le=3600)
    to_self_delay: int = Field(
        default=_ENGINE.to_self_delay, ge=144, le=2016, description="Blocks a force-closing peer waits for its funds."
    )
    min_funding_confirmations: int = Field(default=_ENGINE.min_funding_confirmations, ge=1, le=144)
    forward_immediately: bool = Field(
        default=_ENGINE.forward_immediately,
        description="Skip LDK's random forward delay: lower latency, less timing privacy.",
    )
    onion_message_rate_per_sec: int = Field(
        default=_ENGINE.onion_message_rate_per_sec,
        ge=0,
        le=100_000,
        description="Onion messages one peer may send per second on average (0: no limit); the rest are dropped unread.",
    )
    onion_message_burst: int = Field(
        default=_ENGINE.onion_message_burst, ge=1, le=100_000, description="Onion messages one peer may send at once."
    )
    max_queued_onion_messages: int = Field(
        default=_ENGINE.max_queued_onion_messages,
        ge=10,
        le=1_000_000,
        description="Onion-message events waiting for the LSP logic, in total; beyond it new ones are dropped.",
    )
    max_intercepted_per_peer: int = Field(
        default=_ENGINE.max_intercepted_per_peer,
        ge=1,
        le=100_000,
        description="Messages for one offline node waiting for the LSP logic; beyond it new ones are dropped.",
    )
    min_inbound_channel_sat: int = Field(
        default=_ENGINE.min_inbound_channel_sat,
        ge=1_000,
        le=2_100_000_000_000_000,
        description="Smallest inbound channel accepted (pushed amounts and zero-conf are always refused).",
    )
    log_max_bytes: int = Field(
        default=_ENGINE.log_max_bytes, ge=0, description="Rotate ldk.log past this size (0: never)."
    )
    log_keep_files: int = Field(
        default=_ENGINE.log_keep_files, ge=0, le=100, description="Rotated ldk.log files kept (ldk.log.1 newest)."
    )
    announce_addresses: list[str] = Field(
        default=list(_ENGINE.announce_addresses),
        max_length=100,
        description="host:port addresses in the node announcement, sent once a public channel is usable (empty: none).",
    )
    # The Python log (the LSP logic, the admin API); LDK's own lines go to ldk.log.
    log_file: Path | None = Field(
        default=None, description="Append the Python log here instead of stderr; reopened on SIGHUP (logrotate)."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="text lines, or one JSON object per line (ts, level, logger, message)."
    )

    def options(
        self,
        *,
        accept_intercept_htlcs: bool,
        async_payments_server: bool = False,
        lsps2: Lsps2Options | None = None,
        lsps1: Lsps1Options | None = None,
        lsps5_max_webhooks: int | None = None,
        lsps5_wait_for_client_secs: int = 0,
    ) -> NodeOptions:
        """The engine options these settings describe; interception follows the LSP role, HTLC
        holds for BOLT async payments the [async_payments] section, JIT channels [lsps2], channel
        sales [lsps1], webhooks [lsps5]."""
        return NodeOptions(
            lsps2=lsps2,
            lsps1=lsps1,
            lsps5_max_webhooks=lsps5_max_webhooks,
            lsps5_wait_for_client_secs=lsps5_wait_for_client_secs,
            listen_addr=self.listen_addr,
            sync_interval_secs=self.sync_interval_secs,
            log_level=self.log_level,
            accept_intercept_htlcs=accept_intercept_htlcs,
            to_self_delay=self.to_self_delay,
            min_funding_confirmations=self.min_funding_confirmations,
            forward_immediately=self.forward_immediately,
            onion_message_rate_per_sec=self.onion_message_rate_per_sec,
            onion_message_burst=self.onion_message_burst,
            max_queued_onion_messages=self.max_queued_onion_messages,
            max_intercepted_per_peer=self.max_intercepted_per_peer,
            min_inbound_channel_sat=self.min_inbound_channel_sat,
            log_max_bytes=self.log_max_bytes,
            log_keep_files=self.log_keep_files,
            announce_addresses=list(self.announce_addresses),
            async_payments_server=async_payments_server,
        )

    @field_validator("listen_addr")
    @classmethod
    def _host_port(cls, v: str) -> str:
        return check_host_port(v)

    @field_validator("announce_addresses")
    @classmethod
    def _announce_host_port(cls, v: list[str]) -> list[str]:
        return [check_host_port(a) for a in v]


class ChainSettings(Section):
    source: Literal["embedded", "esplora"] = Field(
        default="embedded",
        description="embedded: the project's own regtest chain in-process; esplora: an external server.",
    )
    esplora_url: str | None = Field(default=None, description="Base URL of the Esplora API when source = esplora.")
    embedded_listen: str = Field(default="127.0.0.1:0", description="Where the embedded chain serves its Esplora API.")

    @field_validator("embedded_listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        return check_host_port(v)

    embedded_fund_sat: int = Field(
        default=10_000_000,
        ge=0,
        description="On first start on the embedded chain, pay the wallet this much and mine it.",
    )


class LspSettings(Section):
    """The LightningRod LSP role (SPEC.md). Disabled, the process is a plain Lightning node."""

    enabled: bool = True
    max_hold_blocks: int = Field(default=1008, ge=1, le=1800, description="Longest hold a client may ask for.")
    cltv_expiry_delta: int = Field(default=72, ge=54, le=288, description="CLTV delta of the intercept hop.")
    failback_margin_blocks: int = Field(
        default=6, ge=1, le=144, description="Fail held HTLCs this long before LDK would."
    )
    expiry_warning_blocks: int = Field(
        default=12, ge=1, le=1008, description="Push hold_expiring this long before fail-back."
    )
    fee_base_msat: int = Field(default=0, ge=0)
    fee_proportional_millionths: int = Field(default=0, ge=0, le=100_000)
    max_holds_per_client: int = Field(default=10, ge=1)
    max_held_htlcs_per_client: int = Field(default=30, ge=1, le=483)
    max_held_msat_per_client: int = Field(default=10_000_000_000, ge=1)
    request_max_age_secs: int = Field(
        default=600, ge=10, le=86_400, description="Signed requests older than this are refused."
    )
    release_wait_secs: float = Field(
        default=10.0,
        ge=0,
        le=120,
        description="On release, wait this long for a next hop's ready channel to become usable before failing back.",
    )
    retry_grace_secs: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description="A released hold whose HTLCs all failed waits this long for the payer's retry, then fails.",
    )
    mailbox_max_messages: int = Field(default=50, ge=1)
    mailbox_max_bytes: int = Field(default=262_144, ge=1024)
    mailbox_ttl_secs: int = Field(default=604_800, ge=60)
    # Quotas per previous-hop peer (SPEC.md §5.3), so that no one sender can fill a client's mailbox.
    mailbox_max_messages_per_sender: int = Field(default=10, ge=1, description="Per client, per channel peer.")
    mailbox_max_bytes_per_sender: int = Field(default=65_536, ge=1024, description="Per client, per channel peer.")
    mailbox_unknown_sender_max_messages: int = Field(
        default=5, ge=0, description="Per client, for all senders without a funded channel together."
    )
    mailbox_unknown_sender_max_bytes: int = Field(default=32_768, ge=0)
    mailbox_sender_max_messages_total: int = Field(
        default=1000, ge=1, description="Per sender, in all mailboxes together (disk per peer)."
    )
    # Onion messages for a node that is neither a peer nor a client: dial its announced address,
    # then forward (SPEC.md §1.6). In memory, off the event path.
    relay_max_dials: int = Field(default=8, ge=1, le=64, description="Dials for relayed onion messages at once.")
    relay_dial_timeout_secs: float = Field(
        default=10.0, gt=0, le=60, description="A dial for relayed messages gives up after this long, all addresses."
    )
    relay_max_pending_per_node: int = Field(
        default=8, ge=1, le=50, description="Onion messages waiting for the dial to one node; more are dropped."
    )
    relay_max_pending: int = Field(
        default=256, ge=1, le=10_000, description="Onion messages waiting for dials, all nodes together."
    )


class NotificationSettings(Section):
    """Push notifications through apprise: one URL template per platform, `{device}` in it."""

    templates: dict[str, str] = Field(default_factory=dict)
    cooldown_secs: float = Field(default=60.0, ge=0)
    max_attempts: int = Field(default=8, ge=1, le=50)
    device_lifetime_days: float = Field(default=28.0, gt=0)

    @field_validator("templates")
    @classmethod
    def _templates(cls, v: dict[str, str]) -> dict[str, str]:
        for platform, template in v.items():
            try:
                check_template(platform, template)
            except ConfigError as e:
                raise ValueError(str(e)) from None
        return v


class AdminSettings(Section):
    listen: str = Field(default="127.0.0.1:9736", description="host:port of the admin API (keep it on loopback).")
    max_body_bytes: int = Field(
        default=65_536, ge=1024, le=16 * 1024 * 1024, description="Larger request bodies get 413."
    )
    # The web dashboard on the same listen address (sign-in with the admin token).
    dashboard: bool = Field(default=True, description="Serve the web dashboard beside the API.")
    session_ttl_secs: int = Field(
        default=43_200, ge=60, le=30 * 86_400, description="A dashboard session ends this long after sign-in."
    )
    session_idle_secs: int = Field(
        default=1800, ge=60, le=30 * 86_400, description="A dashboard session ends after this long unused."
    )
    max_sessions: int = Field(
        default=16, ge=1, le=1000, description="Dashboard sessions at once; a new one ends the least recently used."
    )
    login_max_failures: int = Field(
        default=5, ge=1, le=100, description="Failed sign-ins per address before it waits (one more a minute)."
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        return check_host_port(v)


class MonitorSettings(Section):
    """Samples of the node's numbers kept over time (monitor.sqlite) for the dashboard's charts."""

    sample_interval_secs: float = Field(default=60.0, ge=1, le=3600, description="Take a sample this often.")
    retention_days: float = Field(default=14.0, gt=0, le=3650, description="Samples older than this are deleted.")


class AsyncPaymentsSettings(Section):
    """BOLT async payments, server side (SPEC.md §13): payers' HTLCs flagged `hold_htlc` are held
    until the recipient releases them, and offline recipients' static invoices are kept and
    served. Needs the LSP role ([lsp] enabled): the recipients' messages wait in its mailbox."""

    enabled: bool = Field(default=False, description="Serve BOLT async payments (advertises htlc_hold).")
    paths_valid_days: int = Field(
        default=365, ge=1, le=3650, description="How long the blinded paths given to a recipient stay valid."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")

    node: NodeSettings = NodeSettings()
    chain: ChainSettings = ChainSettings()
    lsp: LspSettings = LspSettings()
    notifications: NotificationSettings = NotificationSettings()
    admin: AdminSettings = AdminSettings()
    monitor: MonitorSettings = MonitorSettings()
    async_payments: AsyncPaymentsSettings = AsyncPaymentsSettings()
    lsps2: Lsps2Settings = Lsps2Settings()
    lsps1: Lsps1Settings = Lsps1Settings()
    lsps5: Lsps5Settings = Lsps5Settings()

    @model_validator(mode="after")
    def _lsps5_needs_the_role(self) -> Settings:
        # The webhooks are POSTed by the LSP role's push outbox.
        if self.lsps5.enabled and not self.lsp.enabled:
            raise ValueError("[lsps5] enabled needs [lsp] enabled (its push outbox sends the webhooks)")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def network_dir(self) -> Path:
        return self.node.data_dir / self.node.network

    @model_validator(mode="after")
    def _async_needs_the_mailbox(self) -> Settings:
        if self.async_payments.enabled and not self.lsp.enabled:
            raise ValueError(
                "[async_payments] enabled needs [lsp] enabled: offline recipients' messages wait in its mailbox"
            )
        return self


def _section_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if (m := _section_model(arg)) is not None:
            return m
    return None


def _is_free_mapping(annotation: Any) -> bool:
    """A field whose keys are the operator's (notifications.templates: platform names)."""
    return get_origin(annotation) is dict or annotation is dict


def _suggest(wrong: str, valid: list[str], show: Callable[[str], str]) -> str:
    close = difflib.get_close_matches(wrong, valid, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {show(close[0])}?"
    return "; valid here: " + ", ".join(show(v) for v in sorted(valid))


def _unknown_keys(
    data: Mapping[str, Any], model: type[BaseModel], where: str, path: tuple[str, ...] = ()
) -> Iterator[str]:
    """A message for each key of `data` (nested) that `model` does not have."""
    prefix = "".join(p + "." for p in path)
    for key, value in data.items():
        f = model.model_fields.get(key)
        if f is None:
            hint = _suggest(key, list(model.model_fields), lambda k: f"'{prefix}{k}'")
            yield f"unknown key '{prefix}{key}' {where}{hint}"
            continue
        sub = _section_model(f.annotation)
        if sub is not None and isinstance(value, Mapping):
            yield from _unknown_keys(value, sub, where, (*path, key))


def _unknown_env(environ: Mapping[str, str]) -> Iterator[str]:
    """A message for each LSP_* environment variable that names no setting."""
    for name in environ:
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        model: type[BaseModel] | None = Settings
        for i, part in enumerate(parts):
            prefix = ENV_PREFIX + "".join(p.upper() + "__" for p in parts[:i])
            if model is None:
                yield f"unknown environment variable {name}: {prefix.rstrip('_')} has no sub-keys"
                break
            f = model.model_fields.get(part)
            if f is None:

                def show(k: str, pre: str = prefix) -> str:
                    return pre + k.upper()

                hint = _suggest(part, list(model.model_fields), show)
                yield f"unknown environment variable {name}{hint}"
                break
            if _is_free_mapping(f.annotation):
                break  # LSP_NOTIFICATIONS__TEMPLATES__FCM: the platform name is the operator's
            model = _section_model(f.annotation)


def _validation_problem(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown key '{loc}'"
    return f"{loc}: {err['msg']}"


def load_settings(
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build settings; `overrides` are the command line's, as nested dicts.

    Every key from every source must name a setting: an unknown one (a typo) is a ConfigError that
    names it and suggests the closest valid key, so no limit silently stays at its default.
    """
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    problems: list[str] = []
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read {config_file}: {e}") from None
        problems += list(_unknown_keys(data, Settings, f"in {config_file}"))
    problems += list(_unknown_env(os.environ))
    problems += list(_unknown_keys(overrides or {}, Settings, "on the command line"))
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))

    class _FromFile(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": config_file})

    try:
        s = _FromFile(**(overrides or {}))
    except ValidationError as e:
        raise ConfigError(
            "invalid configuration: " + "; ".join(_validation_problem(err) for err in e.errors())
        ) from None
    except SettingsError as e:  # an environment value that is not valid JSON for a section
        raise ConfigError(f"invalid configuration from the environment: {e}") from None
    except ValueError as e:
        raise ConfigError(f"invalid configuration: {e}") from None
    if s.chain.source == "embedded" and s.node.network != "regtest":
        raise ConfigError("the embedded chain is regtest only: set chain.source = 'esplora' for other networks")
    if s.chain.source == "esplora" and not s.chain.esplora_url:
        raise ConfigError("chain.source = 'esplora' needs chain.esplora_url")
    return Settings.model_validate(s.model_dump())
