use cablewatch_proto::wire::{AckStatus, Batch, BatchAck, Payload, RowError, ShapeError};
use prost::Message;

use crate::{latency, line_monitoring, optical};

#[test]
fn every_payload_round_trips_through_protobuf() {
    for (seq, payload) in [
        Payload::Optical(optical()),
        Payload::LineMonitoring(line_monitoring()),
        Payload::Latency(latency()),
    ]
    .into_iter()
    .enumerate()
    {
        let batch = Batch {
            station_id: "a".into(),
            stream_epoch: 1_700_000_000,
            sequence: seq as u64,
            payload: Some(payload),
        };
        let bytes = batch.encode_to_vec();
        let decoded = Batch::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded, batch);
        assert!(decoded.payload().unwrap().row_count().unwrap() >= 2);
    }
    let ack = BatchAck {
        stream_epoch: 1,
        sequence: 2,
        status: AckStatus::Partial.into(),
        accepted_rows: 3,
        rejected_rows: 1,
        message: "1 rows rejected".into(),
        duplicate: false,
        retry_after_ms: 0,
        errors: vec![RowError {
            row: 3,
            field: "q_db.avg".into(),
            reason: "NaN".into(),
        }],
    };
    assert_eq!(BatchAck::decode(ack.encode_to_vec().as_slice()).unwrap(), ack);
}

#[test]
fn columns_of_different_lengths_are_named() {
    let mut p = optical();
    p.channel.pop();
    assert_eq!(
        p.row_count(),
        Err(ShapeError::ColumnLength {
            column: "channel".into(),
            len: 3,
            rows: 4
        })
    );
    let mut p = optical();
    p.q_db.as_mut().unwrap().max.clear();
    assert!(matches!(
        p.row_count(),
        Err(ShapeError::UnpairedMinMax { column: "q_db", .. })
    ));
    let mut p = optical();
    p.osnr_db = None;
    assert!(matches!(p.row_count(), Err(ShapeError::ColumnLength { column, .. }) if column == "osnr_db.avg"));
    assert_eq!(Batch::default().payload().unwrap_err(), ShapeError::NoPayload);
}

#[test]
fn slicing_keeps_every_column_aligned() {
    let p = Payload::Optical(optical());
    let s = p.slice(1..3);
    assert_eq!(s.row_count().unwrap(), 2);
    let Payload::Optical(o) = s else {
        panic!("kind changed")
    };
    assert_eq!(o.channel, vec![7, 3]);
    assert_eq!(o.q_db.unwrap().min, vec![8.6, 8.7]);
    assert!(o.pre_fec_ber.unwrap().min.is_empty());
}

#[test]
fn descriptor_set_names_the_versioned_package() {
    let fds = prost_types_free_check(cablewatch_proto::wire::FILE_DESCRIPTOR_SET);
    assert!(
        fds.contains("cablewatch.telemetry.v1"),
        "descriptor lacks the package"
    );
    assert!(fds.contains("TelemetryIngest"));
}

/// The descriptor set is protobuf; its strings (package and service names) appear verbatim.
fn prost_types_free_check(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
