use std::path::Path;

use cablewatch_proto::topology::{Topology, TopologyError};

fn example() -> Topology {
    Topology::from_toml_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/topology.toml"))
        .unwrap()
}

#[test]
fn example_topology_is_realistic() {
    let t = example();
    assert_eq!(t.cables.len(), 3);
    for c in &t.cables {
        assert!(
            (1_200.0..=9_000.0).contains(&c.length_km),
            "{}: {} km",
            c.id,
            c.length_km
        );
        let spans = c.spans();
        assert_eq!(spans.len(), c.repeater_km.len() + 1);
        for s in &spans[1..spans.len() - 1] {
            assert!(
                (40.0..=100.0).contains(&s.length_km()),
                "{} span {}: {} km",
                c.id,
                s.index,
                s.length_km()
            );
        }
        assert!(t.station(c.a_station.as_str()).is_some());
        assert!(
            c.depth_at_km(c.length_km / 2.0).unwrap() > 1000.0,
            "{}: mid-ocean depth",
            c.id
        );
    }
}

#[test]
fn bad_files_get_errors_naming_the_field() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/topology.toml"))
            .unwrap();
    let cases = [
        (
            "fiber_pairs = 4",
            "fiber_pairs = 0",
            "cable[0] (bay-1).fiber_pairs",
        ),
        (
            "a_station = \"bude\"",
            "a_station = \"bilbao\"",
            "cable[0] (bay-1).b_station",
        ),
        (
            "spacing_ghz = 75.0",
            "spacing_ghz = -75.0",
            "cable[0] (bay-1).channel_plan.spacing_ghz",
        ),
        (
            "latitude = 50.83",
            "latitude = 150.83",
            "station[0] (bude).latitude",
        ),
    ];
    for (from, to, field) in cases {
        assert!(text.contains(from), "fixture lacks {from}");
        match Topology::from_toml_str(&text.replacen(from, to, 1), "t") {
            Err(TopologyError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{to}: expected invalid {field}, got {other:?}"),
        }
    }
    let err = Topology::from_toml_str(
        &text.replacen("length_km = 1240.0", "length_km = \"long\"", 1),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("length_km"), "{err}");
}

#[test]
fn topology_round_trips_through_toml() {
    let t = example();
    let again = Topology::from_toml_str(&toml::to_string(&t).unwrap(), "again").unwrap();
    assert_eq!(again, t);
}

#[test]
fn example_context_records_load_and_match_the_example_plant() {
    use cablewatch_proto::context::{Context, ContextRecord};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let ctx = Context::load_dir(&root.join("context-example")).unwrap();
    let kinds: Vec<&str> = ctx.records.iter().map(ContextRecord::kind).collect();
    assert_eq!(kinds, ["maintenance", "vessel", "repair", "seismic"]);
    ctx.check_against(&example()).unwrap();

    let mut off_cable = ctx.clone();
    if let ContextRecord::Repair(r) = &mut off_cable.records[2] {
        r.fault_km = 9_999.0;
    }
    let err = off_cable.check_against(&example()).unwrap_err().to_string();
    assert!(err.contains("REP-77") && err.contains("9999"), "{err}");
}
