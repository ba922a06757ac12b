"""Bad input (issue 8, part 3), reduced: the fuzz suite's mutator, and the whole suite with
20,000 HJ 212 frames and a few hundred HTTPS and MQTT uploads against the real gateways
(child processes), Kafka and the broker. ``energywatch prove fuzz`` runs it with 1,000,000."""

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.dead_letters import decode_dead_letter
from ingest.hj212 import decode_frame
from ingest.hj212_core import mask_password
from proving_ground.fuzz import (
    ACCEPTED,
    MUTATIONS,
    FuzzConfig,
    GatewayProcess,
    PacketMutator,
    World,
    expected_outcome,
    isolated,
    run_fuzz,
    topic_records,
)

WORLD = World.build(packets=30)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), ratio=st.floats(0, 1))
def test_every_mutated_frame_is_one_frame_under_the_gateways_limit(seed, ratio):
    mutator = PacketMutator(WORLD.valid_packets, seed, ratio, max_bytes=4000)
    for _ in range(20):
        how, frame = mutator.next()
        assert how in MUTATIONS
        assert frame.endswith(b"\r\n")
        assert b"\n" not in frame[:-1]
        assert len(frame) <= 4000
        expected_outcome(frame, WORLD.register)  # the core decides; it never raises


def test_the_mutator_is_deterministic_and_mixes_valid_packets_at_its_ratio():
    def frames(seed: int) -> list[tuple[str, bytes]]:
        mutator = PacketMutator(WORLD.valid_packets, seed, 0.25)
        return [mutator.next() for _ in range(4000)]

    first = frames(7)
    assert first == frames(7)
    assert first != frames(8)
    valid = [frame for how, frame in first if how == "valid"]
    assert 800 < len(valid) < 1200
    assert all(expected_outcome(frame, WORLD.register) == ACCEPTED for frame in valid)
    assert {how for how, _ in first} == set(MUTATIONS)


def test_valid_packets_decode_and_mutations_reach_past_the_frame_checks():
    mutator = PacketMutator(WORLD.valid_packets, 3, 0.0)
    outcomes = {expected_outcome(mutator.next()[1], WORLD.register) for _ in range(3000)}
    # re-sealed mutations get past length and CRC into the header, CP and sample checks
    assert {"header", "cp_grammar", "bad_sample", "crc_mismatch", "encoding"} <= outcomes
    assert decode_frame(WORLD.valid_packets[0]).cn == "2051"


@pytest.mark.services
def test_twenty_thousand_fuzzed_frames_and_malformed_uploads_are_each_accounted_for(
    local_stack, tmp_path
):
    config = FuzzConfig(packets=20_000, connections=16, http_requests=300, mqtt_messages=300)
    results = run_fuzz(local_stack, config, tmp_path)
    for channel in ("hj212", "http", "mqtt"):
        failed = [name for name, ok in results[channel]["checks"].items() if not ok]
        assert not failed, f"{channel}: {failed}\n{results[channel]}"
    hj212 = results["hj212"]
    assert hj212["packets"] == 20_001  # and the valid packet sent afterwards
    assert sum(hj212["gateway"]["rejected_by_kind"].values()) > 15_000
    assert results["passed"]


@pytest.mark.services
def test_an_upload_that_is_not_json_is_dead_lettered_byte_for_byte_an_unknown_senders_is_not(
    local_stack, tmp_path
):
    """Regression: bodies FastAPI could not parse (invalid JSON: 422; not UTF-8: 400) were
    answered but neither counted nor dead-lettered, and an unknown sender's invalid JSON got
    a 422 instead of a 401."""
    from energywatch.kafka_topics import delete_topics, ensure_topics

    settings = isolated(local_stack, "t" + tmp_path.name[-8:].replace("_", ""))
    ensure_topics(settings)
    code = sorted(WORLD.meters)[0]
    auth = {"Authorization": f"Bearer {WORLD.tokens[code]}", "Content-Type": "application/json"}
    bodies = [b'{"items": [1,}', b"\x00" * 9]  # JSON's decoder reads NULs as UTF-32
    try:
        with GatewayProcess("http", settings, WORLD.write(tmp_path), tmp_path) as gateway:
            url = f"http://127.0.0.1:{settings.http_port}/v1/readings"
            answers = [httpx.post(url, content=body, headers=auth) for body in bodies]
            stranger = httpx.post(
                url, content=b"{", headers={**auth, "Authorization": f"Bearer {code}.nope"}
            )
            counts = gateway.counts()
        letters = [
            decode_dead_letter(v) for v in topic_records(settings, settings.dead_letter_topic)
        ]
    finally:
        delete_topics(settings)
    assert [a.status_code for a in answers] == [422, 400]
    assert stranger.status_code == 401
    assert counts["rejected"]["not_json"] == 2
    assert counts["received"] == 2
    assert counts["auth_failures"] == 1
    assert sorted(letter.raw for letter in letters) == sorted(bodies)
    assert {letter.kind for letter in letters} == {"not_json"}
    assert all(letter.reason.startswith(code) for letter in letters)
    assert all(mask_password(letter.raw) == letter.raw for letter in letters)
