"""Simulated tracker fleets for tests, benchmarks and drills, and detection-quality evaluation.

Public API (everything else in the package is internal):

    from simulators.scenario import SimConfig, build_scenario
    from simulators.register import register_trips
    from simulators.publish import Publisher

    scenario = build_scenario(seed=1, trackers=100, incidents_rate=0.1, start=None, config=SimConfig(legs=2))
    register_trips(api_url, admin_token, scenario.trip_bodies())          # PUT /api/v1/trips/{id}
    scenario.write_truth("truth.jsonl")                                     # labelled incidents
    stats = Publisher(mqtt_url, speedup=60).publish_scenario(scenario)      # blocks until done

`simulators.scenario`
    build_scenario(seed=1, trackers=100, incidents_rate=0.1, start=None, config=None) -> Scenario
        Deterministic for its arguments. start: Unix seconds, aware datetime or RFC 3339; default
        2024-11-25 05:00 WIB. incidents_rate: share of crates (0..1) with exactly one incident.
    SimConfig: every knob (legs, lead_s, interval_s, storage_interval_s, owntracks_share, GPS noise,
        dead zones, duplicates, shuffles, incident_weights, prefix, thresholds); see its fields.
    Scenario: .start, .end (Unix s), .trackers (TrackerSpec), .trips (TripSpec: .trip_id, .body(),
        .depart_after, .arrive_by, .incident), .truth / .incidents (TruthEvent), .clean_trips,
        .trip_bodies() -> [(trip_id, body)], .write_truth(path), .messages() -> Iterator[Message]
        (the whole fleet in publish-time order), .summary() -> dict.
    WIB, INCIDENT_TYPES, BENIGN_TYPES, wib_iso(ts), utc_iso(ts).

`simulators.publish`
    Publisher(mqtt_url, *, speedup=1.0, connections=1, per_tracker=False, qos=1, protocol="3.1.1",
              window=100, progress=True, client_prefix="kawal-sim", keepalive=60, connect_timeout=30.0,
              max_rate=None)
        .publish_scenario(scenario, **run_kwargs) -> PublishStats
        .run(messages, sim_start, sim_end=None, *, stop=None, fast_forward_until=None,
             on_publish=None) -> PublishStats
        speedup 0 = as fast as the broker acknowledges. `stop` (a threading.Event) ends a run early.
    PublishStats: messages, readings, unique_readings, batches, statuses, acked, wall_s, rate,
        max_lag_s, first_publish (truth id -> wall time), stopped, .as_dict().
    PublishError: the broker is unreachable or refused us.

`simulators.register`
    register_trips(api_url, token, trips, *, concurrency=4, timeout=30.0) -> int; RegistrationError.

`simulators.evaluate`
    run_evaluation(*, trackers=60, seed=1, incidents_rate=0.5, config=None, start=None, speedup=0.0,
                   max_rate=1500.0, api_url=None, mqtt_url=None, token=None, broker="auto", out_dir=None,
                   ...) -> (Evaluation, Scenario)
    score(alerts, truth, trips, clean_trip_ids, first_publish=None) -> Evaluation
    fetch_alerts(api_url, token, *, since=None, tracker_ids=None) -> list[dict]
    write_report(evaluation, out_dir) -> Path; quality_failures(evaluation, min_recall=0.9) -> list[str]

`simulators.harness.LocalKawal(workdir, clock="event", broker="auto")`: a private `kawal serve`.

Commands: `kawal simulate` and `kawal evaluate` (simulators/cli.py, simulators/cli_evaluate.py).
Documentation: docs/simulator.md, docs/evaluation.md.
"""
