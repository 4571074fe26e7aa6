use std::collections::HashSet;

use cablewatch_proto::{
    tables::{self, Table},
    topology::FIBER_DELAY_US_PER_KM,
    wire::{Direction, Payload},
};
use cablewatch_testdata::{
    generate::{Kind, Simulation, Unit, generate, station_streams, write_tables},
    optics::q_db_from_ber,
    plant::EQUIPMENT_DELAY_US,
    scenario::Scenario,
};
use polars::prelude::*;

fn tiny() -> Scenario {
    Scenario::load("tiny").unwrap()
}

fn unit(units: &[Unit], kind: Kind, direction: u8) -> &Unit {
    units
        .iter()
        .find(|u| u.kind == kind && u.direction == direction)
        .unwrap()
}

#[test]
fn same_seed_same_rows_other_seed_other_rows() {
    let mut s = tiny();
    for kind in cablewatch_testdata::events::EventKind::ALL {
        s.events.counts.insert(kind, 1);
    }
    let a = generate(&s, 42).unwrap();
    assert_eq!(a, generate(&s, 42).unwrap());
    assert_ne!(a, generate(&s, 43).unwrap());
}

#[test]
fn q_and_ber_agree_on_every_row() {
    let units = generate(&tiny(), 1).unwrap();
    let Payload::Optical(p) = &unit(&units, Kind::Optical, 0).payload else {
        panic!()
    };
    let (q, ber) = (p.q_db.as_ref().unwrap(), p.pre_fec_ber.as_ref().unwrap());
    assert!(!q.avg.is_empty());
    for i in 0..q.avg.len() {
        let from_ber = q_db_from_ber(f64::from(ber.avg[i]));
        assert!(
            (from_ber - f64::from(q.avg[i])).abs() < 0.01,
            "row {i}: Q {} vs BER {}",
            q.avg[i],
            ber.avg[i]
        );
        assert!(q.min[i] <= q.avg[i] && q.avg[i] <= q.max[i]);
        assert!(
            ber.min[i] <= ber.avg[i] && ber.avg[i] <= ber.max[i],
            "row {i}: BER stats out of order"
        );
    }
}

#[test]
fn latency_and_dispersion_follow_cable_length() {
    let s = tiny();
    let cable = &s.topology.cables[0];
    let units = generate(&s, 1).unwrap();
    let Payload::Latency(p) = &unit(&units, Kind::Latency, 1).payload else {
        panic!()
    };
    let mut d = p.delay_us.clone();
    d.sort_by(f64::total_cmp);
    let median = d[d.len() / 2];
    let expected = cable.length_km * FIBER_DELAY_US_PER_KM + 2.0 * EQUIPMENT_DELAY_US;
    assert!(
        (median - expected).abs() < 3.0,
        "median delay {median} us, expected about {expected} us"
    );
    assert!(
        p.src_station.iter().all(|s| s == "south"),
        "B-to-A probes are sent by the B end"
    );

    let Payload::Optical(o) = &unit(&units, Kind::Optical, 0).payload else {
        panic!()
    };
    let cd = o.cd_ps_nm.as_ref().unwrap().avg[0];
    let per_km = f64::from(cd) / cable.length_km;
    assert!((19.5..21.5).contains(&per_km), "dispersion {per_km} ps/nm/km");
}

#[test]
fn written_tables_read_back_with_polars_using_the_shared_definitions() {
    let s = tiny();
    let units = generate(&s, 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = write_tables(&Simulation::new(&s, 3).unwrap(), dir.path()).unwrap();
    for table in tables::ALL {
        let generated: usize = units
            .iter()
            .filter(|u| u.payload.table().name == table.name)
            .map(|u| u.payload.row_count().unwrap())
            .sum();
        let df = read(dir.path(), table);
        assert_eq!(df.height(), generated, "{}", table.name);
        assert_eq!(summary.rows[table.name], generated);
        for c in table.columns {
            assert!(df.column(c.name).is_ok(), "{}.{} missing", table.name, c.name);
        }
    }
    let lm = read(dir.path(), &tables::LINE_MONITORING);
    let reps = lm.column("repeater").unwrap().u32().unwrap();
    assert_eq!((reps.min(), reps.max()), (Some(1), Some(4)));
}

fn read(data: &std::path::Path, table: &Table) -> DataFrame {
    let glob = cablewatch_proto::layout::table_glob(data, table);
    LazyFrame::scan_parquet(
        PlRefPath::new(glob.to_string_lossy().as_ref()),
        ScanArgsParquet {
            hive_options: HiveOptions::new_enabled(),
            ..Default::default()
        },
    )
    .unwrap()
    .collect()
    .unwrap()
}

#[test]
fn station_streams_carry_every_row_once_from_the_right_station() {
    let units = generate(&tiny(), 1).unwrap();
    let total: usize = units.iter().map(|u| u.payload.row_count().unwrap()).sum();
    let streams = station_streams(&units, 100);
    let mut seen = 0;
    let mut keys = HashSet::new();
    for s in &streams {
        for p in &s.payloads {
            let n = p.row_count().unwrap();
            assert!((1..=100).contains(&n));
            seen += n;
            if let Payload::Optical(o) = p {
                // The receiving end reports a direction's optical rows.
                let want = if s.station.as_str() == "south" {
                    Direction::AToB
                } else {
                    Direction::BToA
                };
                assert!(
                    o.direction.iter().all(|&d| d == want as i32),
                    "{} reports the wrong direction",
                    s.station
                );
                for i in 0..n {
                    assert!(keys.insert((o.time_unix_ns[i], o.fiber_pair[i], o.direction[i], o.channel[i])));
                }
            }
        }
        let firsts: Vec<i64> = s.payloads.iter().map(|p| p.first_time_ns().unwrap()).collect();
        assert!(
            firsts.windows(2).all(|w| w[0] <= w[1]),
            "{}: batches out of time order",
            s.station
        );
    }
    assert_eq!(seen, total);
    assert_eq!(streams.len(), 2);
}

#[test]
fn unknown_scenario_lists_the_named_ones() {
    let err = Scenario::load("no-such-scenario").unwrap_err().to_string();
    assert!(err.contains("small") && err.contains("tiny"), "{err}");
}
