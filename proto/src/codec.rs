//! The gRPC codec of the wire contract: plain prost messages (`application/grpc+proto`, byte for byte
//! what tonic's stock codec sends), encoded into and decoded from contiguous byte slices.
//!
//! Why not tonic's `ProstCodec`: it hands prost tonic's `EncodeBuf`/`DecodeBuf`, and prost reads and
//! writes a packed repeated field one value at a time through them. Each value then costs a
//! `BytesMut` reserve or advance with its bookkeeping. A 1,000-row optical batch has about 30,000
//! packed values, and in the ingest bench those per-value calls were the largest share of the
//! transport's CPU. Here a message is decoded from the received frame as one `&[u8]` and encoded
//! into a reused scratch slice that is then copied into the frame once: the same bytes, several times
//! faster (`benches/README.md`).
//!
//! The generated client and server use this codec (`build.rs` sets `codec_path`), so every caller of
//! the wire contract gets it without doing anything.
//!
//! A station that keeps each batch until it is acknowledged (to resend it after `RETRY_LATER`)
//! can encode it once as an [`EncodedBatch`] and stream those with [`stream_encoded_batches`]:
//! keeping and resending then costs a reference count instead of a deep copy of the batch.

use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use tonic::{
    GrpcMethod, IntoStreamingRequest, Response, Status,
    client::{Grpc, GrpcService},
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder, Streaming},
    codegen::{Body, StdError, http},
};

use crate::wire::{Batch, BatchAck};

/// Codec for the generated services: `T` is encoded, `U` decoded.
#[derive(Debug, Clone, Copy)]
pub struct WireCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for WireCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for WireCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = WireEncoder<T>;
    type Decoder = WireDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        WireEncoder {
            scratch: Vec::new(),
            _pd: PhantomData,
        }
    }

    fn decoder(&mut self) -> Self::Decoder {
        WireDecoder(PhantomData)
    }
}

/// Encodes `T` into a scratch buffer kept for the life of the call, then into the frame in one copy.
#[derive(Debug)]
pub struct WireEncoder<T> {
    scratch: Vec<u8>,
    _pd: PhantomData<T>,
}

impl<T: Message> Encoder for WireEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        self.scratch.clear();
        append_encoded(&item, &mut self.scratch);
        dst.reserve(self.scratch.len());
        dst.put_slice(&self.scratch);
        Ok(())
    }
}

/// Decodes `U` from the frame as one contiguous slice.
#[derive(Debug)]
pub struct WireDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for WireDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let len = src.remaining();
        let decoded = if src.chunk().len() >= len {
            let message = U::decode(&src.chunk()[..len]);
            src.advance(len);
            message
        } else {
            U::decode(src.copy_to_bytes(len))
        };
        decoded
            .map(Some)
            .map_err(|e| Status::internal(format!("decoding the message failed: {e}")))
    }
}

/// A batch encoded once: cheap to keep until acknowledged and to send again.
#[derive(Debug, Clone)]
pub struct EncodedBatch {
    /// The batch's sequence number, to match acknowledgements.
    pub sequence: u64,
    bytes: Bytes,
}

impl EncodedBatch {
    /// Encodes `batch`.
    pub fn new(batch: &Batch) -> Self {
        let mut bytes = Vec::new();
        append_encoded(batch, &mut bytes);
        Self {
            sequence: batch.sequence,
            bytes: bytes.into(),
        }
    }

    /// Bytes already encoded, sent as they are: a relay forwarding what it received, or a check of
    /// what the collector answers to bytes that are not a batch.
    pub fn from_encoded(sequence: u64, bytes: Bytes) -> Self {
        Self { sequence, bytes }
    }

    /// Encoded size, bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for an empty encoding (a default batch).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Codec of [`stream_encoded_batches`]: sends [`EncodedBatch`]es as they are, decodes acks.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodedBatchCodec;

impl Codec for EncodedBatchCodec {
    type Encode = EncodedBatch;
    type Decode = BatchAck;
    type Encoder = EncodedBatchEncoder;
    type Decoder = WireDecoder<BatchAck>;

    fn encoder(&mut self) -> Self::Encoder {
        EncodedBatchEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        WireDecoder(PhantomData)
    }
}

/// Copies an [`EncodedBatch`] into the frame.
#[derive(Debug, Clone, Copy)]
pub struct EncodedBatchEncoder;

impl Encoder for EncodedBatchEncoder {
    type Item = EncodedBatch;
    type Error = Status;

    fn encode(&mut self, item: EncodedBatch, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.bytes.len());
        dst.put_slice(&item.bytes);
        Ok(())
    }
}

/// `TelemetryIngest.StreamBatches` with batches encoded in advance: the same call and bytes on the
/// wire as the generated client's `stream_batches`.
pub async fn stream_encoded_batches<T>(
    grpc: &mut Grpc<T>,
    batches: impl IntoStreamingRequest<Message = EncodedBatch>,
) -> Result<Response<Streaming<BatchAck>>, Status>
where
    T: GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(format!("service was not ready: {}", e.into())))?;
    let path = http::uri::PathAndQuery::from_static("/cablewatch.telemetry.v1.TelemetryIngest/StreamBatches");
    let mut request = batches.into_streaming_request();
    request.extensions_mut().insert(GrpcMethod::new(
        "cablewatch.telemetry.v1.TelemetryIngest",
        "StreamBatches",
    ));
    grpc.streaming(request, path, EncodedBatchCodec).await
}

/// Appends the encoding of `message` (its fields, no length prefix) to `out`, writing into a
/// pre-sized slice rather than growing `out` value by value.
pub fn append_encoded<M: Message>(message: &M, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + message.encoded_len(), 0);
    let mut slot = &mut out[start..];
    // The slot is exactly `encoded_len` bytes, so encoding cannot run out of space.
    if message.encode(&mut slot).is_err() {
        out.truncate(start);
        message.encode(out).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{IntervalStats, OpticalChannelSamples, Payload};

    fn batch(rows: usize) -> Batch {
        let col = |v: f32| (0..rows).map(|i| v + i as f32 * 0.25).collect::<Vec<_>>();
        let stats = |v: f32| {
            Some(IntervalStats {
                avg: col(v),
                min: col(v - 1.0),
                max: col(v + 1.0),
            })
        };
        Batch {
            station_id: "st-a".into(),
            stream_epoch: 7,
            sequence: 42,
            payload: Some(Payload::Optical(OpticalChannelSamples {
                cable_id: "cable-a".into(),
                time_unix_ns: (0..rows as i64)
                    .map(|i| 1_700_000_000_000_000_000 + i * 60_000_000_000)
                    .collect(),
                fiber_pair: vec![1; rows],
                channel: (0..rows as u32).collect(),
                rx_power_dbm: stats(-3.0),
                osnr_db: stats(20.0),
                q_db: stats(9.0),
                ..OpticalChannelSamples::default()
            })),
        }
    }

    #[test]
    fn append_encoded_writes_exactly_what_prost_writes_after_existing_bytes() {
        for rows in [0, 1, 1000] {
            let b = batch(rows);
            let mut out = vec![9, 8, 7];
            append_encoded(&b, &mut out);
            assert_eq!(&out[..3], &[9, 8, 7]);
            assert_eq!(out[3..], b.encode_to_vec()[..], "{rows} rows");
            assert_eq!(Batch::decode(&out[3..]).unwrap(), b);
        }
    }

    #[test]
    fn an_encoded_batch_is_the_batch_s_protobuf() {
        let b = batch(10);
        let e = EncodedBatch::new(&b);
        assert_eq!(e.sequence, 42);
        assert_eq!(e.len(), b.encoded_len());
        assert_eq!(Batch::decode(e.bytes.clone()).unwrap(), b);
    }
}
