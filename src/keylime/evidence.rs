//! The PCR values of a quote as Keylime takes them (`subject_data` of a push-mode
//! `tpm_quote`; the third part of the pull API's `r<attest>:<signature>:<pcrs>` string):
//! tpm2-tools' in-memory layout (what `tpm2_quote -o` writes, and what Keylime's
//! `tpm_util.checkquote` parses), little-endian:
//!
//! * TPML_PCR_SELECTION: `u32` count, then 16 × TPMS_PCR_SELECTION of 8 bytes each
//!   (`u16` hash, `u8` sizeofSelect = 3, `pcrSelect[4]`, one padding byte); unused entries zero;
//! * `u32` number of TPML_DIGESTs, each `u32` count and 8 × TPM2B_DIGEST
//!   (`u16` size, 64-byte buffer), values in PCR index order, 8 per list.

use std::collections::BTreeMap;

use super::KeylimeError;
use crate::tpm::quote::PCR_COUNT;

/// TPM_ALG_SHA256.
const ALG_SHA256: u16 = 0x000b;
const SELECTIONS: usize = 16;
const DIGESTS_PER_LIST: usize = 8;
const TPMU_HA: usize = 64;

/// The PCR blob for sha256 values by index.
pub fn pcr_blob(pcrs: &BTreeMap<u8, Vec<u8>>) -> Result<Vec<u8>, KeylimeError> {
    let mut select = [0u8; 4];
    for (&i, v) in pcrs {
        if i >= PCR_COUNT {
            return Err(KeylimeError::Evidence(format!("PCR {i} does not exist")));
        }
        if v.len() != 32 {
            return Err(KeylimeError::Evidence(format!(
                "PCR {i}: {} bytes, a sha256 PCR has 32",
                v.len()
            )));
        }
        select[usize::from(i / 8)] |= 1 << (i % 8);
    }
    let mut b = Vec::new();
    b.extend_from_slice(&1u32.to_le_bytes());
    for n in 0..SELECTIONS {
        if n == 0 {
            b.extend_from_slice(&ALG_SHA256.to_le_bytes());
            b.push(3);
            b.extend_from_slice(&select);
        } else {
            b.extend_from_slice(&[0; 7]);
        }
        b.push(0); // alignment of TPMS_PCR_SELECTION to 2
    }
    let values: Vec<&Vec<u8>> = pcrs.values().collect();
    let lists = values.chunks(DIGESTS_PER_LIST).collect::<Vec<_>>();
    let count =
        u32::try_from(lists.len()).map_err(|_| KeylimeError::Evidence("too many PCRs".into()))?;
    b.extend_from_slice(&count.to_le_bytes());
    for list in lists {
        // the length was checked: at most 8
        b.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for n in 0..DIGESTS_PER_LIST {
            let mut ha = [0u8; TPMU_HA];
            match list.get(n) {
                Some(v) => {
                    b.extend_from_slice(&(v.len() as u16).to_le_bytes());
                    ha[..v.len()].copy_from_slice(v);
                }
                None => b.extend_from_slice(&0u16.to_le_bytes()),
            }
            b.extend_from_slice(&ha);
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blob_has_tpm2_tools_layout() {
        let mut pcrs = BTreeMap::new();
        for i in [0u8, 7, 8, 16, 23] {
            pcrs.insert(i, vec![i; 32]);
        }
        let b = pcr_blob(&pcrs).expect("blob");
        // selection header, one list of 5 values
        assert_eq!(b.len(), 4 + 16 * 8 + 4 + 4 + 8 * 66);
        assert_eq!(&b[..4], &[1, 0, 0, 0]);
        assert_eq!(&b[4..12], &[0x0b, 0, 3, 0x81, 0x01, 0x81, 0, 0]);
        assert!(b[12..4 + 16 * 8].iter().all(|&x| x == 0));
        let lists = 4 + 16 * 8;
        assert_eq!(&b[lists..lists + 8], &[1, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(&b[lists + 8..lists + 10], &[32, 0]);
        assert_eq!(b[lists + 10], 0);
        // the fifth value (PCR 23) sits in the fifth TPM2B_DIGEST
        let fifth = lists + 8 + 4 * 66;
        assert_eq!(&b[fifth..fifth + 3], &[32, 0, 23]);
    }

    #[test]
    fn nine_pcrs_make_two_lists() {
        let pcrs: BTreeMap<u8, Vec<u8>> = (0..9).map(|i| (i, vec![0; 32])).collect();
        let b = pcr_blob(&pcrs).expect("blob");
        assert_eq!(b.len(), 4 + 16 * 8 + 4 + 2 * (4 + 8 * 66));
    }

    #[test]
    fn bad_values_are_refused() {
        let mut pcrs = BTreeMap::new();
        pcrs.insert(24u8, vec![0; 32]);
        assert!(pcr_blob(&pcrs).is_err());
        let mut pcrs = BTreeMap::new();
        pcrs.insert(1u8, vec![0; 20]);
        assert!(pcr_blob(&pcrs).is_err());
    }
}
