//! The level-2 value format: one format byte, the decoded length, then the payload.
//!
//! Format 1: `0x01`, decoded length as u64 little-endian, a zstd frame (level 3). A value
//! with any other first byte, a short header, a length over the limit or a payload that does
//! not decode to exactly the announced length is rejected (the caller treats it as a miss).
//! Pure functions: bytes in, bytes out.

use bytes::Bytes;

/// First byte of a format-1 value.
pub(crate) const FORMAT_ZSTD_V1: u8 = 0x01;

/// zstd compression level.
pub(crate) const ZSTD_LEVEL: i32 = 3;

/// Header length of format 1: the format byte and the u64 decoded length.
const HEADER_LEN: usize = 1 + 8;

/// Why a value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// zstd refused to compress.
    #[error("compressing a cache value")]
    Compressing(#[source] std::io::Error),
    /// The stored value is empty or shorter than its header.
    #[error("reading the header of a cache value: {len} bytes is too short")]
    ReadingHeader {
        /// The stored length.
        len: usize,
    },
    /// The format byte is not one this version knows.
    #[error("reading the format of a cache value: unknown format byte {0:#04x}")]
    ReadingFormat(u8),
    /// The announced decoded length is over the limit.
    #[error("checking the size of a cache value: {declared} bytes is over the limit of {max}")]
    CheckingSize {
        /// The length in the header.
        declared: u64,
        /// The configured limit.
        max: usize,
    },
    /// The payload is not a valid zstd frame of at most the announced length.
    #[error("decompressing a cache value")]
    Decompressing(#[source] std::io::Error),
    /// The payload decoded to a different length than announced.
    #[error("checking a decompressed cache value: {actual} bytes, header said {declared}")]
    CheckingLength {
        /// The length in the header.
        declared: u64,
        /// The decoded length.
        actual: usize,
    },
}

/// Encodes `value` in format 1.
pub(crate) fn encode(value: &[u8]) -> Result<Vec<u8>, CodecError> {
    let compressed = zstd::bulk::compress(value, ZSTD_LEVEL).map_err(CodecError::Compressing)?;
    let mut out = Vec::with_capacity(HEADER_LEN + compressed.len());
    out.push(FORMAT_ZSTD_V1);
    out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    out.extend_from_slice(&compressed);
    Ok(out)
}

/// Decodes a stored value, refusing anything that would decode to more than `max_bytes`.
pub(crate) fn decode(stored: &[u8], max_bytes: usize) -> Result<Bytes, CodecError> {
    let (&format, rest) = stored
        .split_first()
        .ok_or(CodecError::ReadingHeader { len: 0 })?;
    if format != FORMAT_ZSTD_V1 {
        return Err(CodecError::ReadingFormat(format));
    }
    let (len_bytes, payload) = rest
        .split_first_chunk::<8>()
        .ok_or(CodecError::ReadingHeader { len: stored.len() })?;
    let declared = u64::from_le_bytes(*len_bytes);
    let capacity = usize::try_from(declared)
        .ok()
        .filter(|&n| n <= max_bytes)
        .ok_or(CodecError::CheckingSize {
            declared,
            max: max_bytes,
        })?;
    let decoded = zstd::bulk::decompress(payload, capacity).map_err(CodecError::Decompressing)?;
    if decoded.len() != capacity {
        return Err(CodecError::CheckingLength {
            declared,
            actual: decoded.len(),
        });
    }
    Ok(Bytes::from(decoded))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    fn manifests() -> Vec<u8> {
        (0..200)
            .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n---\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn round_trip_compresses() {
        let value = manifests();
        let stored = encode(&value).unwrap();
        assert_eq!(stored[0], FORMAT_ZSTD_V1);
        assert!(
            stored.len() < value.len() / 4,
            "{} vs {}",
            stored.len(),
            value.len()
        );
        assert_eq!(decode(&stored, MAX).unwrap(), Bytes::from(value));
        let empty = encode(b"").unwrap();
        assert_eq!(decode(&empty, MAX).unwrap(), Bytes::new());
    }

    #[test]
    fn corrupt_values_are_errors_not_panics() {
        let good = encode(&manifests()).unwrap();
        assert!(matches!(
            decode(&[], MAX),
            Err(CodecError::ReadingHeader { .. })
        ));
        assert!(matches!(
            decode(&good[..5], MAX),
            Err(CodecError::ReadingHeader { .. })
        ));
        let mut other_format = good.clone();
        other_format[0] = 0x7f;
        assert!(matches!(
            decode(&other_format, MAX),
            Err(CodecError::ReadingFormat(0x7f))
        ));
        let truncated = &good[..good.len() - 10];
        assert!(decode(truncated, MAX).is_err());
        let mut flipped = good.clone();
        let middle = HEADER_LEN + (good.len() - HEADER_LEN) / 2;
        flipped[middle] ^= 0xff;
        // A flipped byte may or may not be caught by zstd itself; it must never panic
        // and never return a value of the wrong length.
        if let Ok(v) = decode(&flipped, MAX) {
            assert_eq!(v.len(), manifests().len());
        }
        let mut lying = good.clone();
        lying[1..9].copy_from_slice(&10u64.to_le_bytes());
        assert!(decode(&lying, MAX).is_err(), "payload longer than declared");
        let mut huge = good.clone();
        huge[1..9].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode(&huge, MAX),
            Err(CodecError::CheckingSize { .. })
        ));
        let mut short = good;
        short[1..9].copy_from_slice(&((manifests().len() + 5) as u64).to_le_bytes());
        assert!(matches!(
            decode(&short, MAX),
            Err(CodecError::CheckingLength { .. })
        ));
        assert!(decode(b"\x01\0\0\0\0\0\0\0\0garbage", MAX).is_err());
    }
}
