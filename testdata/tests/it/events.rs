use cablewatch_proto::{
    CableId,
    context::ContextRecord,
    wire::{Direction, Payload},
};
use cablewatch_testdata::{
    events::{EventKind, FixedEvent, context_records},
    generate::{Kind, Simulation, Unit},
    scenario::Scenario,
};
use chrono::{DateTime, Utc};

const TWO_AM: &str = "2026-10-01T02:00:00Z";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn ns(s: &str) -> i64 {
    at(s).timestamp_nanos_opt().unwrap()
}

fn fixed(kind: EventKind, start: &str) -> FixedEvent {
    FixedEvent {
        kind,
        cable: CableId::try_new("tiny-1").unwrap(),
        start: at(start),
        fiber_pair: Some(1),
        direction: Some("a_to_b".into()),
        span: Some(3),
        channel: None,
        magnitude: None,
        logged: None,
        bend: Some(false),
        duration_h: None,
        sop_peak_krad_s: None,
    }
}

fn tiny_with(events: Vec<FixedEvent>) -> Scenario {
    let mut s = Scenario::load("tiny").unwrap();
    s.events.fixed = events;
    s
}

fn unit(units: &[Unit], cable: usize, kind: Kind, dir: u8) -> &Payload {
    &units
        .iter()
        .find(|u| u.cable_index == cable && u.kind == kind && u.direction == dir)
        .unwrap()
        .payload
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0), |(s, n), x| (s + x, n + 1));
    assert!(n > 0, "mean of nothing");
    s / n as f64
}

/// Mean of `value(row)` over optical rows of fiber pair `fp` before and after `t`.
fn optical_step(
    p: &Payload,
    fp: u32,
    t: i64,
    value: impl Fn(&cablewatch_proto::wire::OpticalChannelSamples, usize) -> f64,
) -> f64 {
    let Payload::Optical(o) = p else {
        panic!("not optical")
    };
    let rows = |after: bool| {
        (0..o.time_unix_ns.len()).filter(move |&i| o.fiber_pair[i] == fp && (o.time_unix_ns[i] > t) == after)
    };
    mean(rows(true).map(|i| value(o, i))) - mean(rows(false).map(|i| value(o, i)))
}

#[test]
fn tap_moves_its_span_loopback_by_its_loss_while_far_end_power_barely_moves() {
    let mut tap = fixed(EventKind::ClipOnTap, TWO_AM);
    tap.magnitude = Some(0.3);
    let s = tiny_with(vec![tap]);
    let sim = Simulation::new(&s, 11).unwrap();
    let e = &sim.events[0];
    assert!(e.malicious && !e.logged);
    let units = sim.generate_all();

    let Payload::LineMonitoring(lm) = unit(&units, 0, Kind::LineMonitoring, 0) else {
        panic!()
    };
    let change = |rep: u32, fp: u32| {
        let rows = |after: bool| {
            (0..lm.time_unix_ns.len()).filter(move |&i| {
                lm.repeater[i] == rep && lm.fiber_pair[i] == fp && (lm.time_unix_ns[i] > e.end_ns) == after
            })
        };
        mean(rows(true).map(|i| f64::from(lm.loopback_gain_db[i])))
            - mean(rows(false).map(|i| f64::from(lm.loopback_gain_db[i])))
    };
    let span3 = change(3, 1);
    assert!(
        (span3 + 0.3).abs() < 0.06,
        "span 3 loop-back moved {span3:.3} dB for a 0.3 dB tap"
    );
    for rep in [1, 2, 4] {
        assert!(
            change(rep, 1).abs() < 0.06,
            "repeater {rep} moved {:.3} dB",
            change(rep, 1)
        );
    }
    assert!(change(3, 2).abs() < 0.06, "the other fiber pair's span 3 moved");

    let optical = unit(&units, 0, Kind::Optical, 0);
    let rx = |o: &cablewatch_proto::wire::OpticalChannelSamples, i: usize| {
        f64::from(o.rx_power_dbm.as_ref().unwrap().avg[i])
    };
    let q = |o: &cablewatch_proto::wire::OpticalChannelSamples, i: usize| {
        f64::from(o.q_db.as_ref().unwrap().avg[i])
    };
    let rx_tapped = optical_step(optical, 1, e.end_ns, rx) - optical_step(optical, 2, e.end_ns, rx);
    assert!(
        rx_tapped.abs() < 0.3 / 10.0,
        "far-end power moved {rx_tapped:.4} dB for a 0.3 dB tap"
    );
    let q_tapped = optical_step(optical, 1, e.end_ns, q) - optical_step(optical, 2, e.end_ns, q);
    assert!(
        q_tapped < 0.0 && q_tapped > -0.1,
        "Q moved {q_tapped:.4} dB: expected a small drop"
    );

    // The fitting shows as an SOP burst on the tapped fiber only.
    let Payload::Optical(o) = optical else { panic!() };
    let sop_max = o.sop_roc_krad_s.as_ref().unwrap();
    let in_burst = |fp: u32| {
        (0..o.time_unix_ns.len())
            .filter(|&i| {
                o.fiber_pair[i] == fp
                    && o.time_unix_ns[i] > e.start_ns
                    && o.time_unix_ns[i] - 300_000_000_000 < e.end_ns
            })
            .map(|i| f64::from(sop_max.max[i]))
            .fold(0.0, f64::max)
    };
    // Every channel sees at least 40 % of the fitting's peak; the other pair only its quiet tail.
    assert!(
        in_burst(1) >= 0.4 * e.sop_peak_krad_s,
        "no SOP burst of {} krad/s at the tap: {}",
        e.sop_peak_krad_s,
        in_burst(1)
    );
    assert!(
        in_burst(2) < 0.4 * e.sop_peak_krad_s.max(10.0),
        "SOP burst on the untouched fiber pair: {}",
        in_burst(2)
    );
}

/// Going B to A, light reaches repeater k through span k+1: a tap in span 3 shows at repeater 2, a
/// tap in the B shore span (5 of the tiny cable's 4 repeaters) at repeater 4, and a tap in the A
/// shore span at no repeater (nothing measures it in that direction).
#[test]
fn a_b_to_a_tap_shows_at_the_repeater_its_span_feeds() {
    for (span, seen_at) in [(3, Some(2)), (5, Some(4)), (1, None)] {
        let mut tap = fixed(EventKind::ClipOnTap, TWO_AM);
        tap.magnitude = Some(0.3);
        tap.direction = Some("b_to_a".into());
        tap.span = Some(span);
        let s = tiny_with(vec![tap]);
        let sim = Simulation::new(&s, 5).unwrap();
        let end = sim.events[0].end_ns;
        let units = sim.generate_all();
        let Payload::LineMonitoring(lm) = unit(&units, 0, Kind::LineMonitoring, 1) else {
            panic!()
        };
        let change = |rep: u32| {
            let rows = |after: bool| {
                (0..lm.time_unix_ns.len()).filter(move |&i| {
                    lm.repeater[i] == rep && lm.fiber_pair[i] == 1 && (lm.time_unix_ns[i] > end) == after
                })
            };
            mean(rows(true).map(|i| f64::from(lm.loopback_gain_db[i])))
                - mean(rows(false).map(|i| f64::from(lm.loopback_gain_db[i])))
        };
        for rep in 1..=4 {
            let moved = change(rep);
            if Some(rep) == seen_at {
                assert!(
                    (moved + 0.3).abs() < 0.06,
                    "span {span}: repeater {rep} moved {moved:.3} dB"
                );
            } else {
                assert!(
                    moved.abs() < 0.06,
                    "span {span}: repeater {rep} moved {moved:.3} dB"
                );
            }
        }
    }
}

#[test]
fn earthquake_bursts_on_every_cable_at_once_and_is_in_the_seismic_log() {
    let mut s = tiny_with(vec![fixed(EventKind::Earthquake, TWO_AM)]);
    let mut second = s.topology.cables[0].clone();
    second.id = CableId::try_new("tiny-2").unwrap();
    s.topology.cables.push(second);
    let sim = Simulation::new(&s, 3).unwrap();
    let quake = &sim.events[0];
    assert_eq!(quake.cables.len(), 2);
    let units = sim.generate_all();
    for cable in 0..2 {
        for dir in 0..2 {
            let Payload::Optical(o) = unit(&units, cable, Kind::Optical, dir) else {
                panic!()
            };
            let sop = o.sop_roc_krad_s.as_ref().unwrap();
            let window = |i: usize| (o.time_unix_ns[i] - quake.start_ns).abs() < 20 * 60_000_000_000;
            let hit: Vec<_> = (0..o.time_unix_ns.len())
                .filter(|&i| window(i) && sop.max[i] > 2.5)
                .collect();
            let channels: std::collections::HashSet<_> =
                hit.iter().map(|&i| (o.fiber_pair[i], o.channel[i])).collect();
            assert!(
                channels.len() >= 12,
                "cable {cable} dir {dir}: only {} of 16 channels saw the quake",
                channels.len()
            );
            let quiet = (0..o.time_unix_ns.len())
                .filter(|&i| !window(i))
                .filter(|&i| sop.max[i] > 2.5)
                .count();
            assert!(
                quiet * 50 < o.time_unix_ns.len(),
                "cable {cable}: {quiet} quiet bins look like bursts"
            );
        }
    }
    let ctx = context_records(&s.topology, &sim.events);
    assert!(matches!(&ctx[..], [ContextRecord::Seismic(q)] if q.cables.len() == 2));
}

#[test]
fn insertion_and_splice_tap_leave_an_outage_then_extra_delay() {
    let mut insertion = fixed(EventKind::ActiveInsertion, TWO_AM);
    insertion.magnitude = Some(100.0);
    let mut splice = fixed(EventKind::SpliceTap, TWO_AM);
    splice.fiber_pair = Some(2);
    splice.direction = Some("b_to_a".into());
    let s = tiny_with(vec![insertion, splice]);
    let sim = Simulation::new(&s, 5).unwrap();
    let units = sim.generate_all();
    for e in &sim.events {
        let dir = if e.direction.as_deref() == Some("a_to_b") {
            0
        } else {
            1
        };
        let fp = e.fiber_pair.unwrap();
        let Payload::Latency(l) = unit(&units, 0, Kind::Latency, dir) else {
            panic!()
        };
        let rows = |pred: &dyn Fn(i64) -> bool| -> Vec<f64> {
            (0..l.time_unix_ns.len())
                .filter(|&i| l.fiber_pair[i] == fp && pred(l.time_unix_ns[i]))
                .map(|i| l.delay_us[i])
                .collect()
        };
        assert!(
            rows(&|t| t > e.start_ns && t < e.end_ns).is_empty(),
            "{:?}: probes during the outage",
            e.kind
        );
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let step = median(rows(&|t| t >= e.end_ns)) - median(rows(&|t| t < e.start_ns));
        assert!(
            (step - e.delay_us).abs() < 0.5,
            "{:?}: delay step {step:.2} us, injected {:.2} us",
            e.kind,
            e.delay_us
        );
        let Payload::Optical(o) = unit(&units, 0, Kind::Optical, dir) else {
            panic!()
        };
        let during = (0..o.time_unix_ns.len())
            .filter(|&i| {
                o.fiber_pair[i] == fp && o.time_unix_ns[i] > e.start_ns && o.time_unix_ns[i] < e.end_ns
            })
            .count();
        assert_eq!(during, 0, "{:?}: optical rows during loss of signal", e.kind);
    }
    assert!(sim.events.iter().all(|e| e.malicious && !e.logged));
    assert!(
        context_records(&s.topology, &sim.events).is_empty(),
        "attacks leave no operator record"
    );
}

#[test]
fn reroute_changes_path_and_adds_milliseconds_then_reverts() {
    let mut reroute = fixed(EventKind::Reroute, TWO_AM);
    reroute.magnitude = Some(3000.0);
    reroute.logged = Some(true);
    let s = tiny_with(vec![reroute]);
    let sim = Simulation::new(&s, 2).unwrap();
    let e = &sim.events[0];
    let units = sim.generate_all();
    for dir in 0..2 {
        let Payload::Latency(l) = unit(&units, 0, Kind::Latency, dir) else {
            panic!()
        };
        for i in (0..l.time_unix_ns.len()).filter(|&i| l.fiber_pair[i] == 1) {
            let t = l.time_unix_ns[i];
            let rerouted = t >= e.start_ns && t < e.end_ns;
            assert_eq!(
                l.path_id[i].ends_with("/alt"),
                rerouted,
                "row {i}: path {}",
                l.path_id[i]
            );
            assert_eq!(
                l.direction[i],
                if dir == 0 {
                    Direction::AToB as i32
                } else {
                    Direction::BToA as i32
                }
            );
        }
    }
    let Payload::Latency(l) = unit(&units, 0, Kind::Latency, 0) else {
        panic!()
    };
    let delays = |rerouted: bool| {
        let mut v: Vec<f64> = (0..l.time_unix_ns.len())
            .filter(|&i| {
                l.fiber_pair[i] == 1
                    && (l.time_unix_ns[i] >= e.start_ns && l.time_unix_ns[i] < e.end_ns) == rerouted
            })
            .map(|i| l.delay_us[i])
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let step = delays(true) - delays(false);
    assert!(
        (step - 3000.0).abs() < 1.0,
        "reroute added {step:.1} us, injected 3000 us"
    );
    let ctx = context_records(&s.topology, &sim.events);
    assert!(matches!(&ctx[..], [ContextRecord::Maintenance(m)] if m.fiber_pairs == [1]));
}

#[test]
fn random_events_are_placed_by_seed_and_inside_the_plant() {
    let mut s = Scenario::load("tiny").unwrap();
    for kind in EventKind::ALL {
        s.events.counts.insert(kind, 2);
    }
    let a = Simulation::new(&s, 8).unwrap().events;
    assert_eq!(a, Simulation::new(&s, 8).unwrap().events);
    assert_ne!(a, Simulation::new(&s, 9).unwrap().events);
    assert_eq!(a.len(), 2 * EventKind::ALL.len());
    let (start, end) = (ns("2026-10-01T00:00:00Z"), ns("2026-10-01T06:00:00Z"));
    for e in &a {
        assert!(
            e.start_ns >= start && e.start_ns < end,
            "{} starts outside the scenario",
            e.id
        );
        assert_eq!(e.malicious, e.kind.malicious());
        if let Some(span) = e.span {
            assert!((1..=5).contains(&span), "{}: span {span}", e.id);
        }
        if e.kind == EventKind::VesselContact {
            let km = e.km.unwrap();
            let depth = s.topology.cables[0].depth_at_km(km).unwrap();
            assert!(depth < 1000.0, "{}: vessel contact at {depth} m depth", e.id);
        }
    }
}

#[test]
fn clock_skew_biases_one_way_delay_oppositely_and_shifts_the_station_stamps() {
    let mut skew = fixed(EventKind::ClockSkew, TWO_AM);
    skew.magnitude = Some(40.0);
    let s = tiny_with(vec![skew]);
    let sim = Simulation::new(&s, 6).unwrap();
    let e = &sim.events[0];
    let station = e.station.as_ref().unwrap().to_string();
    let units = sim.generate_all();
    // The skewed station receives one direction (+skew) and sends the other (-skew).
    let median_step = |dir: u8| {
        let Payload::Latency(l) = unit(&units, 0, Kind::Latency, dir) else {
            panic!()
        };
        let pick = |skewed: bool| {
            let mut v: Vec<f64> = (0..l.time_unix_ns.len())
                .filter(|&i| {
                    l.fiber_pair[i] == 1
                        && (l.time_unix_ns[i] >= e.start_ns && l.time_unix_ns[i] < e.end_ns) == skewed
                })
                .map(|i| l.delay_us[i])
                .collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        (pick(true) - pick(false), l.src_station[0] == station)
    };
    for dir in 0..2 {
        let (step, sent_by_skewed) = median_step(dir);
        let want = if sent_by_skewed { -40.0 } else { 40.0 };
        assert!(
            (step - want).abs() < 1.0,
            "dir {dir}: one-way delay moved {step:.2} us, expected {want}"
        );
    }
    // Rows stamped by the skewed station carry its clock: off the 5-minute grid by 40 us.
    let reported = units
        .iter()
        .find(|u| u.kind == Kind::Optical && u.station.as_str() == station)
        .unwrap();
    let times = reported.payload.times_ns();
    let off_grid = times.iter().filter(|&&t| t % 300_000_000_000 != 0).count();
    assert!(
        off_grid > 0
            && times
                .iter()
                .all(|&t| t % 300_000_000_000 == 0 || t % 300_000_000_000 == 40_000),
        "skewed stamps"
    );
}

/// A fixed event's `duration_h` replaces the drawn duration, and the outage with it where the event
/// is an outage from start to end (a repair); the other events of the scenario are drawn as before.
/// Ageing, which lasts to the end, refuses one, as does a non-positive duration.
#[test]
fn a_fixed_duration_sets_the_end_and_the_outage() {
    let as_drawn = tiny_with(vec![fixed(EventKind::Repair, TWO_AM)]);
    let drawn = Simulation::new(&as_drawn, 5).unwrap();
    let mut repair = fixed(EventKind::Repair, TWO_AM);
    repair.duration_h = Some(3.0);
    let as_set = tiny_with(vec![repair]);
    let set = Simulation::new(&as_set, 5).unwrap();
    let (d, e) = (&drawn.events[0], &set.events[0]);
    let hour = 3_600_000_000_000_i64;
    assert!(d.outage_ns >= 2 * 24 * hour, "drawn: 2 to 10 days");
    assert_eq!((e.end_ns - e.start_ns, e.outage_ns), (3 * hour, 3 * hour));
    assert_eq!(
        (e.magnitude, e.delay_us),
        (d.magnitude, d.delay_us),
        "the draws are unchanged"
    );
    for (kind, hours) in [(EventKind::AmplifierAgeing, 5.0), (EventKind::Repair, 0.0)] {
        let mut bad = fixed(kind, TWO_AM);
        bad.duration_h = Some(hours);
        let scenario = tiny_with(vec![bad]);
        let err = Simulation::new(&scenario, 5).unwrap_err().to_string();
        assert!(err.contains("duration_h"), "{err}");
    }
}
