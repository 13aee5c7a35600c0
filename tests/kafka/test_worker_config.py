"""Worker and producer arguments: clear errors before anything starts; no key in a repr."""

from __future__ import annotations

from typing import Any

import pytest

import amplitude_async as aa
from amplitude_async.kafka import IdentifyProducer, KafkaIdentifyWorker

KEY = "kafka-config-key-0123"


def make(config: aa.ClientConfig | None = None, **changes: Any) -> KafkaIdentifyWorker:
    options: dict[str, Any] = dict(bootstrap_servers="127.0.0.1:1", topic="t", group_id="g")
    options.update(changes)
    client = aa.AmplitudeClient(KEY, server_url="http://127.0.0.1:1/identify", config=config)
    return KafkaIdentifyWorker(client, **options)


@pytest.mark.parametrize(
    ("config", "changes", "words"),
    [
        (aa.ClientConfig(on_full="drop"), {}, "on_full='wait'"),
        (aa.ClientConfig(spool_path="/tmp/spool.jsonl"), {}, "spool_path"),
        (None, {"topic": ""}, "topic must be"),
        (None, {"group_id": ""}, "group_id must be"),
        (None, {"dead_letter_topic": "t"}, "other than topic"),
        (None, {"max_unsettled": 0}, "max_unsettled"),
        (None, {"session_timeout": 0}, "session_timeout"),
        (None, {"commit_interval": -1}, "commit_interval"),
        (None, {"drain_timeout": 59, "rebalance_timeout": 60}, "shorter than rebalance_timeout"),
        (None, {"consumer_options": {"enable_auto_commit": True}}, "enable_auto_commit"),
    ],
)
def test_bad_arguments_raise_configuration_error(
    config: aa.ClientConfig | None, changes: dict[str, Any], words: str
) -> None:
    with pytest.raises(aa.ConfigurationError, match=words) as info:
        make(config, **changes)
    assert KEY not in str(info.value)


def test_the_client_must_be_an_amplitude_client() -> None:
    with pytest.raises(aa.ConfigurationError, match="AmplitudeClient"):
        KafkaIdentifyWorker(object(), bootstrap_servers="x", topic="t", group_id="g")  # type: ignore[arg-type]


def test_reprs_show_no_key() -> None:
    worker = make()
    assert KEY not in repr(worker) and "topic='t'" in repr(worker)
    producer = IdentifyProducer("127.0.0.1:1", "t", producer_options={"sasl_plain_password": KEY})
    assert KEY not in repr(producer)


def test_producer_refuses_options_it_sets_itself() -> None:
    with pytest.raises(aa.ConfigurationError, match="value_serializer"):
        IdentifyProducer("127.0.0.1:1", "t", producer_options={"value_serializer": str})
    with pytest.raises(aa.ConfigurationError, match="topic"):
        IdentifyProducer("127.0.0.1:1", "")


def test_the_public_namespace_is_sorted_and_complete() -> None:
    import amplitude_async.kafka as kafka

    assert kafka.__all__ == sorted(kafka.__all__)
    assert all(hasattr(kafka, name) for name in kafka.__all__)
